//! Console pages for files: search and upload, one file (revoke, delete, archive
//! entries) and the link maker. Every change goes through the same domain functions as
//! the API (`api::uploads::store_form_file`, `files::delete_file`, `api::downloads::issue`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use filegate_templates::console::files as views;
use filegate_templates::console::Pager;
use serde_json::Value;

use super::{
    catalog_failed, check_post, chrome, failed, field, format_ms, html, notice, posted, query, refusal,
    see_other, viewer,
};
use crate::api::downloads::{self, PARAMS};
use crate::api::multipart::{self, Form};
use crate::api::params::Params;
use crate::api::uploads::{self, OneShot};
use crate::catalog::archives;
use crate::catalog::files::{self as catalog_files, FileRow, ListQuery};
use crate::catalog::pipelines::{self, SortKey};
use crate::error::ApiError;
use crate::ids;
use crate::state::AppState;

/// Rows per page of the files list.
pub const PAGE: u64 = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/files", web::get().to(list))
        .route("/admin/files/upload", web::post().to(upload))
        .route("/admin/files/{id}", web::get().to(detail))
        .route("/admin/files/{id}/delete", web::post().to(delete))
        .route("/admin/files/{id}/revoke", web::post().to(revoke))
        .route("/admin/links", web::get().to(link_maker))
        .route("/admin/links", web::post().to(make_link));
}

/// Every pipeline as (id, name), for filters and selects (the first 1000).
pub(super) async fn pipeline_choices(state: &AppState) -> Vec<views::PipelineChoice> {
    state
        .catalog
        .call(|c| Ok(pipelines::list(c, SortKey::Name, true, 0, 1000)?.0))
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect()
}

/// The pager of a listing at `start` of `total`, with links keeping `filters`.
pub(super) fn pager(
    path: &str,
    filters: &[(&str, String)],
    start: u64,
    shown: usize,
    total: u64,
    page: u64,
) -> Pager {
    let href = |s: u64| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in filters.iter().filter(|(_, v)| !v.is_empty()) {
            q.append_pair(k, v);
        }
        if s > 0 {
            q.append_pair("start", &s.to_string());
        }
        format!("{path}?{}", q.finish())
    };
    Pager {
        first: if shown == 0 { 0 } else { start + 1 },
        last: start + shown as u64,
        total,
        prev: (start > 0).then(|| href(start.saturating_sub(page))),
        next: (start + (shown as u64) < total).then(|| href(start + page)),
    }
}

fn start_of(q: &[(String, String)]) -> u64 {
    q.iter()
        .find(|(k, _)| k == "start")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn get<'a>(q: &'a [(String, String)], k: &str) -> &'a str {
    field(q, k).trim()
}

async fn list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let s = match viewer(&state, &req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let q = query(&req);
    let search = get(&q, "q").to_string();
    let pipeline = get(&q, "pipeline").to_string();
    let kind = match get(&q, "type") {
        k @ ("file" | "archive") => k.to_string(),
        _ => String::new(),
    };
    let start = start_of(&q);
    let lq = ListQuery {
        kind: (!kind.is_empty()).then(|| kind.clone()),
        pipeline_id: ids::is_id(&pipeline).then(|| pipeline.clone()),
        search: (!search.is_empty()).then(|| search.chars().take(200).collect()),
        ascending: false,
        start,
        limit: PAGE,
        now_ms: state.clock.now_ms(),
        ..Default::default()
    };
    let Ok((rows, total)) = state
        .catalog
        .call(move |c| Ok(catalog_files::list(c, &lq)?))
        .await
    else {
        return catalog_failed();
    };
    let pipelines = pipeline_choices(&state).await;
    let name_of = |id: &Option<String>| match id {
        None => String::new(),
        Some(id) => pipelines
            .iter()
            .find(|(p, _)| p == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.clone()),
    };
    let items = rows
        .iter()
        .map(|f| views::FileItem {
            id: f.id.clone(),
            name: f.name.clone(),
            object_key: f.object_key.clone(),
            kind: f.kind.clone(),
            mime_type: f.mime_type.clone(),
            size: u64::try_from(f.size).unwrap_or(0),
            pipeline: name_of(&f.pipeline_id),
            created: format_ms(f.created_at),
            expires: if f.expires_at == 0 {
                String::new()
            } else {
                format_ms(f.expires_at)
            },
            autograph: f.autograph,
            missing: f.is_missing(),
        })
        .collect::<Vec<_>>();
    let filters = [
        ("q", search.clone()),
        ("pipeline", pipeline.clone()),
        ("type", kind.clone()),
    ];
    let v = views::FilesView {
        pager: pager("/admin/files", &filters, start, items.len(), total, PAGE),
        items,
        q: search,
        pipeline,
        kind,
        pipelines,
        max_upload_bytes: state.config.storage.max_upload_size,
        notice: notice(&req),
        error: None,
    };
    html(StatusCode::OK, views::files(&chrome(&s, "files"), &v))
}

/// `POST /admin/files/upload`: the upload form (multipart: `csrf` and the options, then
/// `file`), stored like the API's one-shot upload. The CSRF token is checked before a
/// byte of the file is read.
async fn upload(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    let s = match viewer(&state, &req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let mut form = Form::new(&req, payload);
    match upload_inner(&state, &req, &s.csrf, &mut form).await {
        Ok(Ok(id)) => see_other(&format!("/admin/files/{id}?done=uploaded")),
        // The form (and the unread body) lives until the answer is sent, so a refused
        // upload is not read to its end (see api::multipart::keep_unread_on_error).
        Ok(Err(page)) => multipart::holding(page, Box::new(form)),
        Err(e) => multipart::holding(
            failed(e.status(), &format!("The upload was refused. {}", refusal(&e))),
            Box::new(form),
        ),
    }
}

async fn upload_inner(
    state: &AppState,
    req: &HttpRequest,
    csrf: &str,
    form: &mut Form,
) -> Result<Result<String, HttpResponse>, ApiError> {
    if !multipart::is_multipart(req) {
        return Err(ApiError::bad_request("invalid_multipart"));
    }
    multipart::check_length(req, state.config.storage.max_upload_size)?;
    let request_expected = uploads::request_digests(req)?;
    let (fields, part) = form.until_file().await?;
    if let Err(page) = check_post(req, csrf, &fields) {
        return Ok(Err(page));
    }
    let part = part.ok_or_else(|| ApiError::invalid("missing_file", multipart::FILE_FIELD))?;
    let now = state.clock.now_ms();
    let mut options = Vec::new();
    for (k, v) in fields {
        let v = v.trim().to_string();
        match k.as_str() {
            "csrf" => {}
            _ if v.is_empty() => {}
            // The console asks for days; the API takes an instant in milliseconds.
            "expires_in_days" => {
                let days: i64 = v
                    .parse()
                    .ok()
                    .filter(|d| (1..=36_500).contains(d))
                    .ok_or_else(|| ApiError::invalid("invalid_expires_at", "expires_in_days"))?;
                options.push(("expires_at".to_string(), (now + days * 86_400_000).to_string()));
            }
            _ => options.push((k, v)),
        }
    }
    let (_, f) = uploads::store_form_file(
        state,
        form,
        OneShot {
            query: Vec::new(),
            fields: options,
            part,
            request_expected,
            app_id: None,
        },
    )
    .await?;
    tracing::info!(file_id = %f.id, size = f.size, "file uploaded in the console");
    Ok(Ok(f.id))
}

/// A visible file (not expired) by id.
async fn visible(state: &AppState, id: &str) -> Result<Option<FileRow>, ApiError> {
    if !ids::is_id(id) {
        return Ok(None);
    }
    let id = id.to_string();
    let now = state.clock.now_ms();
    let row = state
        .catalog
        .call(move |c| Ok(catalog_files::get(c, &id)?))
        .await?;
    Ok(row.filter(|f| !f.is_expired(now)))
}

fn not_found() -> HttpResponse {
    html(
        StatusCode::NOT_FOUND,
        filegate_templates::console::message("Not found", "No such file (deleted or expired)."),
    )
}

async fn detail(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let s = match viewer(&state, &req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let f = match visible(&state, &path).await {
        Ok(Some(f)) => f,
        Ok(None) => return not_found(),
        Err(_) => return catalog_failed(),
    };
    let id = f.id.clone();
    let is_archive = f.kind == "archive";
    let pid = f.pipeline_id.clone();
    let read = state
        .catalog
        .call(move |c| {
            let entries = if is_archive {
                archives::list(c, &id)?
            } else {
                Vec::new()
            };
            let pipeline = match &pid {
                Some(p) => pipelines::get(c, p)?.map(|p| format!("{} ({})", p.name, p.id)),
                None => None,
            };
            Ok((entries, pipeline))
        })
        .await;
    let Ok((entries, pipeline)) = read else {
        return catalog_failed();
    };
    let v = views::FileDetail {
        id: f.id.clone(),
        name: f.name.clone(),
        object_key: f.object_key.clone(),
        kind: f.kind.clone(),
        subtype: f.subtype.clone().unwrap_or_default(),
        mime_type: f.mime_type.clone(),
        size: u64::try_from(f.size).unwrap_or(0),
        md5: f.md5.clone(),
        sha256: f.sha256.clone(),
        autograph: f.autograph,
        pipeline: pipeline.unwrap_or_default(),
        job: f.job_id.clone().unwrap_or_default(),
        created: format_ms(f.created_at),
        expires: if f.expires_at == 0 {
            String::new()
        } else {
            format_ms(f.expires_at)
        },
        missing: f.is_missing(),
        revoked: if f.revoked_before > 0 {
            format_ms(f.revoked_before)
        } else {
            String::new()
        },
        entries: entries
            .into_iter()
            .map(|e| views::EntryItem {
                name: e.name,
                size: e.size,
                mime_type: e.mime_type,
            })
            .collect(),
        notice: notice(&req),
        error: None,
    };
    html(StatusCode::OK, views::file(&chrome(&s, "files"), &v))
}

async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let f = match posted(&state, &req, &body) {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    if field(&f, "confirm") != "yes" {
        return failed(
            StatusCode::BAD_REQUEST,
            "Tick the confirmation box to delete the file.",
        );
    }
    let file = match visible(&state, &path).await {
        Ok(Some(f)) => f,
        Ok(None) => return not_found(),
        Err(_) => return catalog_failed(),
    };
    let store = state.store.clone();
    let id = file.id.clone();
    let deleted = state
        .catalog
        .call(move |c| crate::files::delete_file(c, &store, &id))
        .await;
    state.cache.invalidate_file(&file.id);
    match deleted {
        Ok(Some(_)) => {
            tracing::info!(file_id = %file.id, "file deleted in the console");
            see_other("/admin/files?done=deleted")
        }
        Ok(None) => not_found(),
        Err(e) => failed(e.status(), &refusal(&e)),
    }
}

async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    if let Err(r) = posted(&state, &req, &body) {
        return r;
    }
    let file = match visible(&state, &path).await {
        Ok(Some(f)) => f,
        Ok(None) => return not_found(),
        Err(_) => return catalog_failed(),
    };
    // +1: a link issued in this very millisecond is "before" the revocation too (as the API).
    let before = state.clock.now_ms() + 1;
    let id = file.id.clone();
    let done = state
        .catalog
        .call(move |c| {
            crate::catalog::write_tx(c, |tx| catalog_files::revoke(tx, &id, before)).map_err(ApiError::from)
        })
        .await;
    state.cache.invalidate_file(&file.id);
    match done {
        Ok(true) => {
            tracing::info!(file_id = %file.id, "links revoked in the console");
            see_other(&format!("/admin/files/{}?done=revoked", file.id))
        }
        Ok(false) => not_found(),
        Err(e) => failed(e.status(), &refusal(&e)),
    }
}

/// How long a link may live, as offered in the form: (seconds, label), within `max_ttl`.
fn durations(default_ttl: u64, max_ttl: u64) -> Vec<(u64, String)> {
    let mut d: Vec<(u64, String)> = [
        (600, "10 minutes"),
        (3600, "1 hour"),
        (86_400, "1 day"),
        (7 * 86_400, "7 days"),
        (30 * 86_400, "30 days"),
    ]
    .into_iter()
    .filter(|(s, _)| *s <= max_ttl)
    .map(|(s, l)| (s, l.to_string()))
    .collect();
    if !d.iter().any(|(s, _)| *s == default_ttl) {
        d.push((default_ttl, format!("{default_ttl} s (the default)")));
        d.sort();
    }
    d
}

fn link_form(f: &[(String, String)]) -> views::LinkForm {
    let on = |k: &str| matches!(get(f, k), "true" | "1" | "on");
    views::LinkForm {
        file_id: get(f, "file_id").to_string(),
        object_key: get(f, "object_key").to_string(),
        pipeline_id: get(f, "pipeline_id").to_string(),
        item: get(f, "item").to_string(),
        valid_for: get(f, "valid_for").to_string(),
        expiry_time: get(f, "expiry_time").to_string(),
        ip: get(f, "ip").to_string(),
        streaming: on("streaming"),
        anti_fraud: on("anti_fraud"),
        autograph_tag: field(f, "autograph_tag").to_string(),
        max_parallel_downloads: get(f, "max_parallel_downloads").to_string(),
    }
}

async fn link_page(
    state: &AppState,
    s: &super::Session,
    status: StatusCode,
    mut form: views::LinkForm,
    issued: Option<views::Issued>,
    error: Option<String>,
) -> HttpResponse {
    let links = &state.config.links;
    if form.valid_for.is_empty() {
        form.valid_for = links.default_ttl.to_string();
    }
    let v = views::LinkMakerView {
        form,
        pipelines: pipeline_choices(state).await,
        durations: durations(links.default_ttl, links.max_ttl),
        issued,
        error,
    };
    html(status, views::link_maker(&chrome(s, "links"), &v))
}

/// The link maker, prefilled from the query (`file_id`, `item`…).
async fn link_maker(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let s = match viewer(&state, &req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    link_page(&state, &s, StatusCode::OK, link_form(&query(&req)), None, None).await
}

/// The form's fields as the parameters of `GET /v1/files/downloads` (empty ones left
/// out; `valid_for` becomes `expiry_time`), checked by the API's own parser.
fn download_request(
    state: &AppState,
    f: &[(String, String)],
) -> Result<downloads::DownloadRequest, ApiError> {
    let now_secs = state.clock.now_ms().div_euclid(1000);
    let mut pairs = Vec::new();
    for (k, v) in f {
        let v = if k == "autograph_tag" {
            v.clone()
        } else {
            v.trim().to_string()
        };
        if v.is_empty() || !PARAMS.contains(&k.as_str()) || k == "redirect" {
            continue;
        }
        // Unticked checkboxes are absent; ticked ones say `true`.
        pairs.push((k.clone(), v));
    }
    if get(f, "expiry_time").is_empty() {
        if let Ok(secs) = get(f, "valid_for").parse::<i64>() {
            pairs.push(("expiry_time".into(), now_secs.saturating_add(secs).to_string()));
        }
    }
    let p = Params::from_pairs(pairs, &[PARAMS])?;
    let links = &state.config.links;
    downloads::parse(&p, now_secs, links.default_ttl, links.max_ttl, None)
}

async fn make_link(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let (s, f) = match posted(&state, &req, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let form = link_form(&f);
    let d = match download_request(&state, &f) {
        Ok(d) => d,
        Err(e) => return link_page(&state, &s, e.status(), form, None, Some(refusal(&e))).await,
    };
    let base = crate::api::base_url(&req, &state.config);
    match downloads::issue(&state, &d, None, &base).await {
        Ok(answer) => {
            let issued = issued_view(&answer, &d);
            link_page(&state, &s, StatusCode::OK, form, Some(issued), None).await
        }
        Err(e) => link_page(&state, &s, e.status(), form, None, Some(refusal(&e))).await,
    }
}

/// The `download` answer as the page shows it.
fn issued_view(a: &Value, d: &downloads::DownloadRequest) -> views::Issued {
    let size = |v: &Value| v["size"].as_u64().unwrap_or(0);
    let links = match a["items"].as_array() {
        Some(items) => items
            .iter()
            .map(|i| views::IssuedLink {
                name: i["name"].as_str().unwrap_or("").to_string(),
                size: size(i),
                url: i["url"].as_str().unwrap_or("").to_string(),
            })
            .collect(),
        None => vec![views::IssuedLink {
            name: a["name"].as_str().unwrap_or("").to_string(),
            size: size(a),
            url: a["url"].as_str().unwrap_or("").to_string(),
        }],
    };
    let mut traits = vec![if d.streaming {
        "plays inline (streaming)"
    } else {
        "downloads as a file"
    }
    .to_string()];
    if let Some(ip) = d.ip {
        traits.push(format!("only for {ip}"));
    }
    if d.anti_fraud {
        traits.push("anti-fraud".into());
    }
    if let Some(n) = d.max_parallel_downloads {
        traits.push(format!("at most {n} at once"));
    }
    if let Some(t) = &d.autograph_tag {
        traits.push(format!("tagged {t:?}"));
    }
    views::Issued {
        links,
        expires: format_ms(d.expiry_time.saturating_mul(1000)),
        expiry_time: d.expiry_time,
        traits,
    }
}
