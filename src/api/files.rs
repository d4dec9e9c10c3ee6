//! `GET /v1/files/`, `GET /v1/files/ID`, `DELETE /v1/files/ID` (SPEC §3).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::base_url;
use super::expand::Expand;
use super::jobs::{expanded_job, expanded_pipeline};
use super::params::{Params, LIST};
use super::render::Rendering;
use crate::archive::Entry;
use crate::auth::signed::accepted_params;
use crate::auth::{authenticate, Scope};
use crate::catalog::archives as catalog_archives;
use crate::catalog::files::{self as catalog_files, FileRow, ListQuery, SortKey};
use crate::catalog::pipelines::{self as catalog_pipelines, PipelineRow};
use crate::error::ApiError;
use crate::ids;
use crate::jobs::{self, JobView};
use crate::state::AppState;

const LIST_FILTERS: &[&str] = &["type", "pipeline.id", "job.id"];
/// A file's expandable links.
const EXPANDABLE: &[&str] = &["pipeline", "job"];

/// The pipelines and jobs a page of files links to, when they are to be expanded.
#[derive(Debug, Default)]
pub struct Linked {
    pipelines: HashMap<String, PipelineRow>,
    jobs: HashMap<String, JobView>,
}

impl Linked {
    /// Loads what `rows` link to and `x` expands, with a few queries whatever the
    /// number of rows (inside the page's one catalog call). Blocking.
    pub fn load(
        c: &rusqlite::Connection,
        rows: &[FileRow],
        x: Expand,
        now_ms: i64,
    ) -> Result<Linked, ApiError> {
        let mut out = Linked::default();
        if x.has("pipeline") {
            for id in rows.iter().filter_map(|f| f.pipeline_id.as_deref()) {
                if !out.pipelines.contains_key(id) {
                    if let Some(p) = catalog_pipelines::get(c, id)? {
                        out.pipelines.insert(p.id.clone(), p);
                    }
                }
            }
        }
        if x.has("job") {
            let ids: Vec<String> = rows.iter().filter_map(|f| f.job_id.clone()).collect();
            if !ids.is_empty() {
                for v in jobs::views_of(c, &ids, now_ms)? {
                    out.jobs.insert(v.job.id.clone(), v);
                }
            }
        }
        Ok(out)
    }

    /// `v` (the resource of `f`) with its expanded links made whole; a null link stays
    /// null, a link to something deleted since stays `{id, href}`.
    pub fn expand(&self, mut v: Value, f: &FileRow, base: &str) -> Value {
        if let Some(p) = f.pipeline_id.as_deref().and_then(|id| self.pipelines.get(id)) {
            v["pipeline"] = expanded_pipeline(p, base);
        }
        if let Some(j) = f.job_id.as_deref().and_then(|id| self.jobs.get(id)) {
            v["job"] = expanded_job(j, base);
        }
        v
    }
}

/// The links of one file `x` expands (one catalog call; none when nothing is expanded).
async fn linked_one(state: &AppState, f: &FileRow, x: Expand) -> Result<Linked, ApiError> {
    if !x.any() {
        return Ok(Linked::default());
    }
    let f = f.clone();
    let now = state.clock.now_ms();
    state
        .catalog
        .call(move |c| Linked::load(c, std::slice::from_ref(&f), x, now))
        .await
}

/// The MediaHub file resource (without its wrapper). `entries` are the archive's (see
/// [`entries_of`]); `elements` is null for a plain file.
pub fn file_json(f: &FileRow, entries: &[Entry], base: &str) -> Value {
    let mut v = mediahub_json(f, entries, base);
    // Not a MediaHub field, so only present when true: clients see why the file's links
    // fail (410) and may delete it.
    if f.is_missing() {
        v["missing"] = json!(true);
    }
    v
}

fn mediahub_json(f: &FileRow, entries: &[Entry], base: &str) -> Value {
    let link = |kind: &str, id: &Option<String>| match id {
        Some(id) => json!({"id": id, "href": format!("{base}/v1/{kind}/{id}")}),
        None => Value::Null,
    };
    json!({
        "id": f.id,
        "name": f.name,
        "title": f.title,
        "type": f.kind,
        "subtype": f.subtype,
        "mime_type": f.mime_type,
        "size": f.size,
        "md5_checksum": f.md5,
        "sha256": f.sha256,
        "autograph": f.autograph,
        "object_key": f.object_key,
        "pipeline": link("pipelines", &f.pipeline_id),
        "job": link("jobs", &f.job_id),
        "elements": if f.kind == "archive" { elements_json(entries) } else { Value::Null },
        "created_at": f.created_at,
        "updated_at": f.updated_at,
        "expires_at": if f.expires_at == 0 { Value::Null } else { json!(f.expires_at) },
        "uri": format!("{base}/v1/files/downloads/?file_id={}", f.id),
    })
}

/// `elements` of an archive: one `{name, size, mime_type}` per listed entry, in order.
fn elements_json(entries: &[Entry]) -> Value {
    entries
        .iter()
        .map(|e| json!({"name": e.name, "size": e.size, "mime_type": e.mime_type}))
        .collect()
}

/// The entries of `f` when it is an archive (no catalog read otherwise).
pub async fn entries_of(state: &AppState, f: &FileRow) -> Result<Vec<Entry>, ApiError> {
    if f.kind != "archive" {
        return Ok(Vec::new());
    }
    let id = f.id.clone();
    state
        .catalog
        .call(move |c| Ok(catalog_archives::list(c, &id)?))
        .await
}

/// A whole file as an expanded link shows it (with its own `href`).
pub fn expanded_file(f: &FileRow, entries: &[Entry], base: &str) -> Value {
    let mut v = file_json(f, entries, base);
    v["href"] = json!(format!("{base}/v1/files/{}", f.id));
    v
}

/// The visible (unexpired) files among `ids`, with their archives' entries, to expand
/// links to them: two queries whatever their number. Blocking.
pub fn load_files(
    c: &rusqlite::Connection,
    ids: &[String],
    now_ms: i64,
) -> Result<HashMap<String, (FileRow, Vec<Entry>)>, ApiError> {
    let rows: Vec<FileRow> = catalog_files::get_many(c, ids)?
        .into_iter()
        .filter(|f| !f.is_expired(now_ms))
        .collect();
    let archives: Vec<&str> = rows
        .iter()
        .filter(|f| f.kind == "archive")
        .map(|f| f.id.as_str())
        .collect();
    let mut entries = catalog_archives::list_many(c, &archives)?;
    Ok(rows
        .into_iter()
        .map(|f| {
            let e = entries.remove(&f.id).unwrap_or_default();
            (f.id.clone(), (f, e))
        })
        .collect())
}

/// Every `"file": {id, href}` link in `v`, at any depth, made whole while its file is
/// visible (a file deleted or expired since stays the link): one catalog call for all.
/// For answers that hold file links and nothing else to expand (links, backtraces).
pub async fn expand_file_links(state: &AppState, v: &mut Value, base: &str) -> Result<(), ApiError> {
    let mut ids = Vec::new();
    collect_file_links(v, &mut ids);
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort();
    ids.dedup();
    let now = state.clock.now_ms();
    let files = state.catalog.call(move |c| load_files(c, &ids, now)).await?;
    replace_file_links(v, &files, base);
    Ok(())
}

/// The id of a link (`{id, href}` and nothing else).
fn link_id(v: &Value) -> Option<&str> {
    match v {
        Value::Object(m) if m.len() == 2 && m.contains_key("href") => m.get("id")?.as_str(),
        _ => None,
    }
}

fn collect_file_links(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match link_id(x) {
                    Some(id) if k == "file" => out.push(id.to_string()),
                    _ => collect_file_links(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_file_links(x, out)),
        _ => {}
    }
}

fn replace_file_links(v: &mut Value, files: &HashMap<String, (FileRow, Vec<Entry>)>, base: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let found = link_id(x).and_then(|id| files.get(id));
                match found {
                    Some((f, entries)) if k == "file" => *x = expanded_file(f, entries, base),
                    _ => replace_file_links(x, files, base),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| replace_file_links(x, files, base)),
        _ => {}
    }
}

/// `{id, href}` of a file.
pub fn file_link(id: &str, base: &str) -> Value {
    json!({"id": id, "href": format!("{base}/v1/files/{id}")})
}

pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[LIST, LIST_FILTERS, accepted_params(&req)])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubRead)?;
    let paging = params.paging(1)?;
    let sort = match params.get("sort") {
        None => SortKey::CreatedAt,
        Some(s) => SortKey::parse(s).ok_or_else(|| ApiError::invalid("invalid_sort", "sort"))?,
    };
    let kind = match params.get("type") {
        None => None,
        Some(t @ ("file" | "archive")) => Some(t.to_string()),
        Some(_) => return Err(ApiError::invalid("invalid_type", "type")),
    };
    let id_filter = |name: &str| -> Result<Option<String>, ApiError> {
        match params.get(name) {
            None => Ok(None),
            Some(v) if ids::is_id(v) => Ok(Some(v.to_string())),
            Some(_) => Err(ApiError::invalid("invalid_id", name)),
        }
    };
    let q = ListQuery {
        kind,
        pipeline_id: id_filter("pipeline.id")?,
        job_id: id_filter("job.id")?,
        search: None,
        sort,
        ascending: paging.direction > 0,
        start: paging.start,
        limit: paging.limit,
        now_ms: state.clock.now_ms(),
    };
    let now = q.now_ms;
    let (rows, total, entries, linked) = state
        .catalog
        .call(move |c| {
            let (rows, total) = catalog_files::list(c, &q)?;
            let archives: Vec<&str> = rows
                .iter()
                .filter(|f| f.kind == "archive")
                .map(|f| f.id.as_str())
                .collect();
            let entries = catalog_archives::list_many(c, &archives)?;
            let linked = Linked::load(c, &rows, x, now)?;
            Ok((rows, total, entries, linked))
        })
        .await?;
    let base = base_url(&req, &state.config);
    let files: Vec<Value> = rows
        .iter()
        .map(|f| {
            let v = file_json(f, entries.get(&f.id).map_or(&[][..], Vec::as_slice), &base);
            linked.expand(v, f, &base)
        })
        .collect();
    Ok(rendering.ok(json!({
        "files": files,
        "total": total,
        "start": paging.start,
        "limit": paging.limit,
    })))
}

/// A visible file by id: 404 when unknown, malformed or expired.
async fn visible(state: &AppState, id: &str) -> Result<FileRow, ApiError> {
    if !ids::is_id(id) {
        return Err(ApiError::not_found("file"));
    }
    let id = id.to_string();
    let row = state
        .catalog
        .call(move |c| Ok(catalog_files::get(c, &id)?))
        .await?;
    match row {
        Some(f) if !f.is_expired(state.clock.now_ms()) => Ok(f),
        _ => Err(ApiError::not_found("file")),
    }
}

pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[accepted_params(&req)])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubRead)?;
    let f = visible(&state, &path).await?;
    let entries = entries_of(&state, &f).await?;
    let linked = linked_one(&state, &f, x).await?;
    let base = base_url(&req, &state.config);
    let v = linked.expand(file_json(&f, &entries, &base), &f, &base);
    Ok(rendering.ok(json!({ "file": v })))
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    Rendering::negotiate(&req, &params)?;
    // 204 without a body: nothing to expand.
    Expand::nothing(&params)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubWrite)?;
    let f = visible(&state, &path).await?;
    let store = state.store.clone();
    let deleted = state
        .catalog
        .call(move |c| crate::files::delete_file(c, &store, &f.id))
        .await?;
    // Its links stop at once in this process (other readers see the row gone).
    state.cache.invalidate_file(&path);
    match deleted {
        Some(_) => Ok(HttpResponse::build(StatusCode::NO_CONTENT).finish()),
        None => Err(ApiError::not_found("file")),
    }
}

/// `POST /v1/files/ID/revoke`: every link to the file issued before now stops working
/// (410 `link_revoked`); links issued afterwards work. Answers the file.
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubWrite)?;
    let f = visible(&state, &path).await?;
    // +1: a link issued in this very millisecond is "before" the revocation too.
    let before = state.clock.now_ms() + 1;
    let id = f.id.clone();
    let found = state
        .catalog
        .call(move |c| {
            crate::catalog::write_tx(c, |tx| {
                if !catalog_files::revoke(tx, &id, before)? {
                    return Ok(None);
                }
                catalog_files::get(tx, &id)
            })
            .map_err(ApiError::from)
        })
        .await?;
    state.cache.invalidate_file(&f.id);
    let row = found.ok_or_else(|| ApiError::not_found("file"))?;
    tracing::info!(file_id = %row.id, "links revoked");
    let entries = entries_of(&state, &row).await?;
    let linked = linked_one(&state, &row, x).await?;
    let base = base_url(&req, &state.config);
    let v = linked.expand(file_json(&row, &entries, &base), &row, &base);
    Ok(rendering.ok(json!({ "file": v })))
}
