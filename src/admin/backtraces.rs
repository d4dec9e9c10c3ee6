//! The console's backtraces: trace a suspect copy, list past backtraces, show one.
//! Tracing goes through the API's own `api::backtraces::trace_form_file`, and a
//! backtrace is read back with its `load`, `page` and `trace_marks`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use filegate_templates::console::backtraces as views;

use super::files::pager;
use super::{
    catalog_failed, check_post, chrome, failed, field, format_ms, html, notice, query, refusal, see_other,
    viewer,
};
use crate::api::backtraces as api;
use crate::api::multipart::{self, Form};
use crate::catalog::autograph::{Backtrace, Outcome};
use crate::catalog::files as catalog_files;
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;

/// Rows per page of the list.
pub const PAGE: u64 = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/backtraces", web::get().to(list))
        .route("/admin/backtraces", web::post().to(trace))
        .route("/admin/backtraces/{id}", web::get().to(detail));
}

fn item(b: &Backtrace) -> views::BacktraceItem {
    let first = b.marks.iter().find(|m| m.authentic);
    views::BacktraceItem {
        id: b.id.clone(),
        created: format_ms(b.created_at),
        result: b.outcome.as_str().to_string(),
        name: b.name.clone().unwrap_or_default(),
        size: b.size,
        file_id: first.map(|m| m.file_id.clone()).unwrap_or_default(),
        tag: first.map(|m| m.tag.clone()).unwrap_or_default(),
        app_id: b.app_id.clone().unwrap_or_default(),
    }
}

async fn list_page(
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
    let result = field(&q, "result").trim();
    let outcome = Outcome::parse(result);
    let result = outcome.map(|o| o.as_str().to_string()).unwrap_or_default();
    let start = field(&q, "start").parse().unwrap_or(0);
    let Ok((rows, total)) = api::page(state, outcome, false, start, PAGE).await else {
        return catalog_failed();
    };
    let items: Vec<_> = rows.iter().map(item).collect();
    let v = views::BacktracesView {
        pager: pager(
            "/admin/backtraces",
            &[("result", result.clone())],
            start,
            items.len(),
            total,
            PAGE,
        ),
        items,
        result,
        max_upload_bytes: state.config.storage.max_upload_size,
        error,
    };
    html(status, views::backtraces(&chrome(&s, "backtraces"), &v))
}

async fn list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    list_page(&state, &req, StatusCode::OK, None).await
}

/// `POST /admin/backtraces`: the suspect copy (multipart: `csrf`, then `file`), traced
/// like `POST /v1/backtraces/`. The CSRF token is checked before a byte of the copy is read.
async fn trace(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let s = match viewer(&state, &req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut form = Form::new(&req, payload);
    match trace_inner(&state, &req, &s.csrf, &mut form).await {
        Ok(Ok(id)) => see_other(&format!("/admin/backtraces/{id}?done=traced")),
        // The unread body lives until the answer is sent (see api::multipart::holding).
        Ok(Err(page)) => multipart::holding(page, Box::new(form)),
        Err(e) => {
            let page = list_page(
                &state,
                &req,
                e.status(),
                Some(format!("The copy was not traced. {}", refusal(&e))),
            )
            .await;
            multipart::holding(page, Box::new(form))
        }
    }
}

async fn trace_inner(
    state: &AppState,
    req: &HttpRequest,
    csrf: &str,
    form: &mut Form,
) -> Result<Result<String, HttpResponse>, ApiError> {
    if !multipart::is_multipart(req) {
        return Err(ApiError::bad_request("invalid_multipart"));
    }
    multipart::check_length(req, state.config.storage.max_upload_size)?;
    let (fields, part) = form.until_file().await?;
    if let Err(page) = check_post(req, csrf, &fields) {
        return Ok(Err(page));
    }
    let fields = fields.into_iter().filter(|(k, _)| k != "csrf").collect();
    let b = api::trace_form_file(state, form, fields, part, None).await?;
    tracing::info!(backtrace = %b.id, result = b.outcome.as_str(), "backtrace in the console");
    Ok(Ok(b.id))
}

async fn detail(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let s = match viewer(&state, &req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let b = match api::load(&state, &path).await {
        Ok(Some(b)) => b,
        Ok(None) => return failed(StatusCode::NOT_FOUND, "No such backtrace."),
        Err(_) => return catalog_failed(),
    };
    let Ok(traced) = api::trace_marks(&state, &b).await else {
        return catalog_failed();
    };
    // The traced files' names, while they exist (a leaked copy outlives its file).
    let wanted: Vec<String> = b
        .marks
        .iter()
        .filter(|m| m.authentic)
        .map(|m| m.file_id.clone())
        .collect();
    let now = state.clock.now_ms();
    let Ok(names) = state
        .catalog
        .call(move |c| {
            let mut out = Vec::with_capacity(wanted.len());
            for id in wanted {
                let row = catalog_files::get(c, &id)?;
                out.push(row.filter(|f| !f.is_expired(now)).map(|f| f.name));
            }
            Ok(out)
        })
        .await
    else {
        return catalog_failed();
    };
    let mut names = names.into_iter();
    let mut found = Vec::new();
    let mut forged = Vec::new();
    for (m, t) in b.marks.iter().zip(traced) {
        let mark_id = ids::hex(&m.mark_id);
        match t {
            Some(t) => found.push(views::TracedMark {
                mark_id,
                file_id: m.file_id.clone(),
                file_name: names.next().flatten(),
                tag: m.tag.clone(),
                link: t.link.map(|l| views::IssuedAs {
                    app_id: l.app_id.unwrap_or_default(),
                    issued: format_ms(l.issued_at),
                    expires: format_ms(l.expires_at.saturating_mul(1000)),
                }),
                downloads: t
                    .downloads
                    .into_iter()
                    .map(|d| views::DownloadSeen {
                        id: d.id,
                        client: d.client,
                        first: format_ms(d.first_at),
                        last: format_ms(d.last_at),
                        requests: d.requests,
                        bytes: u64::try_from(d.bytes).unwrap_or(0),
                        status: d.status,
                        reason: (!d.outcome.is_empty()).then_some(d.outcome),
                    })
                    .collect(),
            }),
            None => forged.push(views::ForgedMark {
                mark_id,
                file_id: m.file_id.clone(),
                tag: m.tag.clone(),
            }),
        }
    }
    let v = views::BacktraceDetail {
        id: b.id.clone(),
        created: format_ms(b.created_at),
        result: b.outcome.as_str().to_string(),
        name: b.name.clone().unwrap_or_default(),
        size: b.size,
        sha256: b.sha256.clone(),
        app_id: b.app_id.clone().unwrap_or_default(),
        found,
        forged,
        notice: notice(&req),
    };
    html(StatusCode::OK, views::backtrace(&chrome(&s, "backtraces"), &v))
}
