//! The console's anti-fraud page: list sources and entries, import a list file, add and
//! remove ranges, check an address — through `fraud::lists`, as the API and CLI do.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use filegate_templates::console::fraud as views;
use futures_util::StreamExt;

use super::{
    catalog_failed, check_post, chrome, failed, field, format_ms, html, notice, posted, query, refusal,
    see_other, viewer,
};
use crate::api::downloads::parse_ip;
use crate::api::fraud::MAX_LIST_BYTES;
use crate::api::multipart::{self, Form};
use crate::catalog::fraud as table;
use crate::error::{ApiError, ErrorKind};
use crate::fraud::lists::{self, List};
use crate::fraud::ranges;
use crate::state::AppState;

/// Entries shown per source (each with a remove button); the rest are counted.
const SAMPLE: u64 = 100;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/fraud", web::get().to(page))
        .route("/admin/fraud/import", web::post().to(import))
        .route("/admin/fraud/add", web::post().to(add))
        .route("/admin/fraud/remove-entry", web::post().to(remove_entry))
        .route("/admin/fraud/remove-source", web::post().to(remove_source));
}

async fn render(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let s = match viewer(state, req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let q = query(req);
    let ip = field(&q, "ip").trim().to_string();
    let check_ip = (!ip.is_empty()).then(|| parse_ip(&ip).ok()).flatten();
    let read = state
        .catalog
        .call(move |c| {
            let sources = table::sources(c)?;
            let mut samples = Vec::with_capacity(sources.len());
            for r in &sources {
                samples.push(table::source_entries(c, &r.list, &r.source, SAMPLE)?);
            }
            let entries = match check_ip {
                Some(a) => table::entries_containing(c, ranges::point(a))?,
                None => Vec::new(),
            };
            Ok((sources, samples, entries))
        })
        .await;
    let Ok((sources, samples, entries)) = read else {
        return catalog_failed();
    };
    let sets = state.fraud.lists.current();
    let lists = List::ALL
        .iter()
        .map(|l| views::ListView {
            name: l.as_str(),
            ranges: sets.get(*l).len(),
            sources: sources
                .iter()
                .zip(&samples)
                .filter(|(r, _)| r.list == l.as_str())
                .map(|(r, sample)| views::SourceItem {
                    source: r.source.clone(),
                    entries: r.entries,
                    imported: format_ms(r.imported_at),
                    sample: sample.clone(),
                })
                .collect(),
        })
        .collect();
    let check = (!ip.is_empty()).then(|| views::CheckView {
        lists: check_ip.map(|a| sets.lists_of(a).iter().map(|l| l.as_str()).collect()),
        ip: check_ip.map(|a| a.to_string()).unwrap_or(ip),
        entries,
    });
    let v = views::FraudView {
        lists,
        check,
        notice: notice(req),
        error,
    };
    html(status, views::fraud(&chrome(&s, "fraud"), &v))
}

async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    render(&state, &req, StatusCode::OK, None).await
}

fn list_of(f: &[(String, String)]) -> Result<List, ApiError> {
    List::parse(field(f, "list")).ok_or_else(|| ApiError::invalid("invalid_list", "list"))
}

/// A posted form (session and CSRF token checked) naming a list; else the answer to
/// give (the page again with the refusal when the list is not one of ours).
async fn posted_to_list(
    state: &AppState,
    req: &HttpRequest,
    body: &[u8],
) -> Result<(Vec<(String, String)>, List), HttpResponse> {
    let (_, f) = posted(state, req, body)?;
    match list_of(&f) {
        Ok(list) => Ok((f, list)),
        Err(e) => Err(render(state, req, e.status(), Some(refusal(&e))).await),
    }
}

/// After a change: the running process uses the lists at once.
async fn changed(state: &AppState, done: &str) -> HttpResponse {
    if let Err(e) = state.fraud.lists.reload_if_changed().await {
        tracing::warn!(error = %e, "reloading the anti-fraud lists");
    }
    see_other(&format!("/admin/fraud?done={done}"))
}

/// `POST /admin/fraud/import` (multipart: `csrf`, `list`, `source`, then `file`):
/// replaces that source with the file, like `PUT /v1/fraud/lists/NAME/`.
async fn import(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let s = match viewer(&state, &req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut form = Form::new(&req, payload);
    let answer = import_inner(&state, &req, &s.csrf, &mut form).await;
    let res = match answer {
        Ok(Ok((list, source, n))) => {
            tracing::info!(list = list.as_str(), source = %source, entries = n, "anti-fraud list imported in the console");
            changed(&state, "imported").await
        }
        Ok(Err(page)) => page,
        Err(e) => {
            render(
                &state,
                &req,
                e.status(),
                Some(format!("Nothing was imported. {}", refusal(&e))),
            )
            .await
        }
    };
    multipart::holding(res, Box::new(form))
}

async fn import_inner(
    state: &AppState,
    req: &HttpRequest,
    csrf: &str,
    form: &mut Form,
) -> Result<Result<(List, String, usize), HttpResponse>, ApiError> {
    if !multipart::is_multipart(req) {
        return Err(ApiError::bad_request("invalid_multipart"));
    }
    let (fields, part) = form.until_file().await?;
    if let Err(page) = check_post(req, csrf, &fields) {
        return Ok(Err(page));
    }
    let list = list_of(&fields)?;
    let source = match field(&fields, "source").trim() {
        "" => lists::DEFAULT_SOURCE.to_string(),
        s => s.to_string(),
    };
    if !lists::valid_source(&source) {
        return Err(ApiError::invalid("invalid_source", "source"));
    }
    let mut field = part
        .ok_or_else(|| ApiError::invalid("missing_file", multipart::FILE_FIELD))?
        .field;
    let mut buf = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(|_| ApiError::bad_request("invalid_multipart"))?;
        if buf.len() + chunk.len() > MAX_LIST_BYTES {
            return Err(ApiError::new(ErrorKind::PayloadTooLarge, "body_too_large"));
        }
        buf.extend_from_slice(&chunk);
    }
    // The form reads on only once the field is gone.
    drop(field);
    form.finish().await?;
    let text = String::from_utf8(buf).map_err(|_| ApiError::bad_request("body_not_utf8"))?;
    let now = state.clock.now_ms();
    let src = source.clone();
    let n = state
        .catalog
        .call(move |c| Ok(lists::import(c, list, &src, &text, now)?))
        .await?;
    Ok(Ok((list, source, n.entries)))
}

async fn add(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (f, list) = match posted_to_list(&state, &req, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let source = field(&f, "source").trim().to_string();
    let text = field(&f, "entries").to_string();
    let now = state.clock.now_ms();
    let src = source.clone();
    match state
        .catalog
        .call(move |c| Ok(lists::add(c, list, &src, &text, now)?))
        .await
    {
        Ok(n) => {
            tracing::info!(list = list.as_str(), source = %source, entries = n.entries, "anti-fraud ranges added in the console");
            changed(&state, "added").await
        }
        Err(e) => {
            render(
                &state,
                &req,
                e.status(),
                Some(format!("Nothing was added. {}", refusal(&e))),
            )
            .await
        }
    }
}

async fn remove_entry(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (f, list) = match posted_to_list(&state, &req, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let source = field(&f, "source").trim().to_string();
    let entry = field(&f, "entry").to_string();
    let now = state.clock.now_ms();
    let (src, ent) = (source.clone(), entry.clone());
    match state
        .catalog
        .call(move |c| Ok(lists::remove_entry(c, list, &src, &ent, now)?))
        .await
    {
        Ok(Some(_)) => {
            tracing::info!(list = list.as_str(), source = %source, entry = %entry.trim(), "anti-fraud range removed in the console");
            changed(&state, "entry_removed").await
        }
        Ok(None) => {
            let e = ApiError::not_found("entry").with_param("entry");
            render(
                &state,
                &req,
                e.status(),
                Some(format!("{} holds no such entry. {}", source, refusal(&e))),
            )
            .await
        }
        Err(e) => render(&state, &req, e.status(), Some(refusal(&e))).await,
    }
}

async fn remove_source(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (f, list) = match posted_to_list(&state, &req, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let source = field(&f, "source").to_string();
    let src = source.clone();
    let n = state
        .catalog
        .call(move |c| {
            Ok(crate::catalog::write_tx(c, |tx| {
                table::remove(tx, list.as_str(), Some(&src))
            })?)
        })
        .await;
    match n {
        Ok(0) => {
            let e = ApiError::not_found("source").with_param("source");
            render(&state, &req, e.status(), Some(refusal(&e))).await
        }
        Ok(_) => {
            tracing::info!(list = list.as_str(), source = %source, "anti-fraud source removed in the console");
            changed(&state, "source_removed").await
        }
        Err(e) => failed(e.status(), &refusal(&e)),
    }
}
