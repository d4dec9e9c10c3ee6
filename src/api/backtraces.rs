//! `POST /v1/backtraces/` (a suspect copy, multipart field `file`, streamed and scanned
//! for AutoGraph marks as it passes; nothing of it is kept but its size and SHA-256) and
//! `GET /v1/backtraces/ID` (SPEC §7). Scope `autograph`.
//!
//! `result` is `found` (at least one authentic mark: the file, tag and mark id come from
//! it, with the tagged link as issued and every download of it in the audit trail),
//! `no_mark` (nothing shaped like a mark) or `forged_mark` (marks whose MAC is not ours:
//! they are listed with `authentic: false`, and nothing of theirs is answered as fact).

use std::sync::atomic::Ordering;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::audit::download_json;
use super::base_url;
use super::expand::Expand;
use super::files::{expand_file_links, file_link};
use super::multipart::{self, FilePart, Form, IDLE_TIMEOUT};
use super::params::{Params, LIST};
use super::render::Rendering;
use crate::auth::{authenticate, Scope};
use crate::autograph::scan::Scanner;
use crate::autograph::MarkId;
use crate::catalog::audit::DownloadRow;
use crate::catalog::autograph::{self as table, Backtrace, FoundMark, LinkRow, Outcome};
use crate::catalog::{self, audit};
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;

/// Scanned on the blocking pool in batches of this size.
const BATCH: usize = 1 << 20;
/// A backtrace's expandable link: `file` (its own, its marks' and their downloads').
const EXPANDABLE: &[&str] = &["file"];

/// Most audit entries shown per mark.
const MAX_DOWNLOADS: u64 = 1000;

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Holds the body so that a refusal never drains it (see api::multipart).
    let mut form = Form::new(&req, payload);
    let answer = create_inner(&state, &req, &mut form).await;
    multipart::keep_unread_on_error(answer, form)
}

async fn create_inner(
    state: &AppState,
    req: &HttpRequest,
    form: &mut Form,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    let rendering = Rendering::negotiate(req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    let who = authenticate(state, req, &params).await?;
    who.require(Scope::Autograph)?;
    if !multipart::is_multipart(req) {
        return Err(ApiError::invalid("missing_file", multipart::FILE_FIELD));
    }
    let max = state.config.storage.max_upload_size;
    multipart::check_length(req, max)?;
    let (fields, part) = form.until_file().await?;
    let b = trace_form_file(state, form, fields, part, Some(who.app_id.clone())).await?;
    let base = base_url(req, &state.config);
    let mut v = backtrace_json(state, b, &base).await?;
    if x.has("file") {
        expand_file_links(state, &mut v, &base).await?;
    }
    Ok(rendering.respond(StatusCode::CREATED, json!({ "backtrace": v })))
}

/// Streams a suspect copy's `file` part through the mark scanner, judges the marks and
/// records the backtrace (durably, before it returns). The API's `POST /v1/backtraces/`
/// and the console's backtrace form both trace through here, so they accept, refuse and
/// conclude alike. `fields` are the text fields sent before `file` (checked like query
/// parameters: none of their own); `app_id` is `None` for the console.
pub async fn trace_form_file(
    state: &AppState,
    form: &mut Form,
    fields: Vec<(String, String)>,
    part: Option<FilePart>,
    app_id: Option<String>,
) -> Result<Backtrace, ApiError> {
    Params::from_pairs(fields, &[])?;
    let part = part.ok_or_else(|| ApiError::invalid("missing_file", multipart::FILE_FIELD))?;
    let max = state.config.storage.max_upload_size;
    let name = part.filename.clone();

    let mut field = part.field;
    let mut work = Some((Scanner::new(), Sha256::new()));
    let mut batch = Vec::with_capacity(BATCH);
    let mut size = 0u64;
    loop {
        let next = actix_web::rt::time::timeout(IDLE_TIMEOUT, field.next())
            .await
            .map_err(|_| ApiError::bad_request("upload_stalled"))?;
        let end = match next {
            None => true,
            Some(Err(_)) => return Err(ApiError::bad_request("incomplete_body")),
            Some(Ok(b)) => {
                size += b.len() as u64;
                if size > max {
                    return Err(multipart::too_large());
                }
                batch.extend_from_slice(&b);
                false
            }
        };
        if batch.len() >= BATCH || (end && !batch.is_empty()) {
            let (mut scanner, mut sha) = work.take().ok_or_else(|| ApiError::internal("scanner lost"))?;
            let buf = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            work = Some(
                web::block(move || {
                    scanner.feed(&buf);
                    sha.update(&buf);
                    (scanner, sha)
                })
                .await?,
            );
        }
        if end {
            break;
        }
    }
    drop(field);
    form.finish().await?;
    let (scanner, sha) = work.ok_or_else(|| ApiError::internal("scanner lost"))?;
    let (candidates, misshapen) = scanner.finish();

    let marks: Vec<FoundMark> = candidates
        .into_iter()
        .map(|c| FoundMark {
            authentic: state.marks.check(&c),
            mark_id: c.id,
            file_id: c.file_id,
            tag: c.tag,
        })
        .collect();
    let outcome = if marks.iter().any(|m| m.authentic) {
        Outcome::Found
    } else if marks.is_empty() {
        Outcome::NoMark
    } else {
        Outcome::ForgedMark
    };
    let now = state.clock.now_ms();
    let b = Backtrace {
        id: ids::new_id(now.div_euclid(1000)),
        app_id,
        created_at: now,
        name,
        size,
        sha256: ids::hex(&sha.finalize()),
        outcome,
        marks,
    };
    let row = b.clone();
    state
        .catalog
        .call(move |c| catalog::write_tx(c, |tx| Ok(table::insert_backtrace(tx, &row)?)))
        .await?;
    state.metrics.backtraces[outcome as usize].fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        backtrace = %b.id,
        result = outcome.as_str(),
        marks = b.marks.len(),
        misshapen,
        size,
        "backtrace"
    );
    Ok(b)
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
        .require(Scope::Autograph)?;
    let b = load(&state, &path.into_inner())
        .await?
        .ok_or_else(|| ApiError::not_found("backtrace"))?;
    let base = base_url(&req, &state.config);
    let mut v = backtrace_json(&state, b, &base).await?;
    if x.has("file") {
        expand_file_links(&state, &mut v, &base).await?;
    }
    Ok(rendering.ok(json!({ "backtrace": v })))
}

/// `GET /v1/backtraces/`: the backtraces, newest first, without their downloads (ask
/// for one to get them); filter `result`.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[LIST, &["result"]])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::Autograph)?;
    let paging = params.paging(-1)?;
    match params.get("sort") {
        None | Some("created_at") => {}
        Some(_) => return Err(ApiError::invalid("invalid_sort", "sort")),
    }
    let result = match params.get("result") {
        None => None,
        Some(r) => Some(Outcome::parse(r).ok_or_else(|| ApiError::invalid("invalid_result", "result"))?),
    };
    let (start, limit) = (paging.start, paging.limit);
    let (rows, total) = page(&state, result, paging.direction > 0, start, limit).await?;
    let base = base_url(&req, &state.config);
    let mut items = Value::Array(rows.iter().map(|b| summary_json(b, &base)).collect());
    if x.has("file") {
        expand_file_links(&state, &mut items, &base).await?;
    }
    Ok(rendering.ok(json!({
        "backtraces": items,
        "total": total,
        "start": start,
        "limit": limit,
    })))
}

fn mark_json(m: &FoundMark, base: &str) -> Value {
    json!({
        "mark_id": ids::hex(&m.mark_id),
        "file": file_link(&m.file_id, base),
        "tag": m.tag,
        "authentic": m.authentic,
    })
}

/// A backtrace without the catalog lookups of its marks' links and downloads.
fn summary_json(b: &Backtrace, base: &str) -> Value {
    let first = b.marks.iter().find(|m| m.authentic);
    json!({
        "id": b.id,
        "result": b.outcome.as_str(),
        "file": first.map(|m| file_link(&m.file_id, base)),
        "tag": first.map(|m| m.tag.clone()),
        "mark_id": first.map(|m| ids::hex(&m.mark_id)),
        "marks": b.marks.iter().map(|m| mark_json(m, base)).collect::<Vec<_>>(),
        "suspect": {
            "name": b.name,
            "size": b.size,
            "sha256": b.sha256,
        },
        "client_id": b.app_id,
        "created_at": b.created_at,
    })
}

/// A backtrace by id (`None` for an unknown or malformed id).
pub async fn load(state: &AppState, id: &str) -> Result<Option<Backtrace>, ApiError> {
    if !ids::is_id(id) {
        return Ok(None);
    }
    let id = id.to_string();
    state.catalog.call(move |c| Ok(table::backtrace(c, &id)?)).await
}

/// A page of backtraces (newest first unless `ascending`) and the total; `result` filters.
pub async fn page(
    state: &AppState,
    result: Option<Outcome>,
    ascending: bool,
    start: u64,
    limit: u64,
) -> Result<(Vec<Backtrace>, u64), ApiError> {
    state
        .catalog
        .call(move |c| Ok(table::list_backtraces(c, result, ascending, start, limit)?))
        .await
}

/// An authentic mark traced back: the tagged link as issued (`None` when its row is
/// gone or was never written) and every download of it in the audit trail now.
#[derive(Debug, Clone, Default)]
pub struct Traced {
    pub link: Option<LinkRow>,
    pub downloads: Vec<DownloadRow>,
}

/// For each mark of `b`, in order: `Some` traced link for an authentic mark, `None` for
/// a forged one (a forgery is never looked up as fact).
pub async fn trace_marks(state: &AppState, b: &Backtrace) -> Result<Vec<Option<Traced>>, ApiError> {
    let wanted: Vec<Option<MarkId>> = b.marks.iter().map(|m| m.authentic.then_some(m.mark_id)).collect();
    state
        .catalog
        .call(move |c| {
            let mut out = Vec::with_capacity(wanted.len());
            for id in wanted {
                out.push(match id {
                    Some(id) => Some(Traced {
                        link: table::link(c, &id)?,
                        downloads: audit::by_link(c, &id, MAX_DOWNLOADS)?,
                    }),
                    None => None,
                });
            }
            Ok(out)
        })
        .await
}

/// The backtrace with, for each authentic mark, its link as issued and its downloads as
/// the audit trail has them now.
async fn backtrace_json(state: &AppState, b: Backtrace, base: &str) -> Result<Value, ApiError> {
    let traced = trace_marks(state, &b).await?;
    let mut marks = Vec::with_capacity(b.marks.len());
    let mut first: Option<Value> = None;
    for (m, t) in b.marks.iter().zip(traced) {
        let mut v = mark_json(m, base);
        if let Some(t) = t {
            v["link"] = match t.link {
                Some(l) => json!({
                    "client_id": l.app_id,
                    "issued_at": l.issued_at,
                    "expiry_time": l.expires_at,
                }),
                None => Value::Null,
            };
            v["downloads"] = Value::Array(t.downloads.iter().map(|d| download_json(d, base)).collect());
            if first.is_none() {
                first = Some(v.clone());
            }
        }
        marks.push(v);
    }
    let first = first.unwrap_or(Value::Null);
    Ok(json!({
        "id": b.id,
        "result": b.outcome.as_str(),
        "file": first.get("file").cloned().unwrap_or(Value::Null),
        "tag": first.get("tag").cloned().unwrap_or(Value::Null),
        "mark_id": first.get("mark_id").cloned().unwrap_or(Value::Null),
        "link": first.get("link").cloned().unwrap_or(Value::Null),
        "downloads": first.get("downloads").cloned().unwrap_or(json!([])),
        "marks": marks,
        "suspect": {
            "name": b.name,
            "size": b.size,
            "sha256": b.sha256,
        },
        "client_id": b.app_id,
        "created_at": b.created_at,
    }))
}
