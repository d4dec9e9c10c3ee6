//! `POST/GET /v1/pipelines/`, `GET/DELETE /v1/pipelines/ID` (SPEC §4).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::body;
use super::expand::Expand;
use super::params::{Params, LIST};
use super::render::Rendering;
use crate::auth::{authenticate, Scope};
use crate::catalog::pipelines::{self as catalog_pipelines, PipelineRow, SortKey};
use crate::error::ApiError;
use crate::ids;
use crate::pipelines::{self, NewPipeline};
use crate::state::AppState;

/// The MediaHub pipeline resource (without its wrapper).
pub fn pipeline_json(p: &PipelineRow) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "store_options": {"mode": p.mode},
        "default_object_timeout": p.default_object_timeout,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    })
}

/// `{id, href}` of a pipeline.
pub fn pipeline_link(id: &str, base: &str) -> Value {
    json!({"id": id, "href": format!("{base}/v1/pipelines/{id}")})
}

const FIELDS: &[&str] = &["name", "description", "store_options", "default_object_timeout"];

/// `{"pipeline":{name, description, store_options:{mode}, default_object_timeout}}`.
fn new_pipeline(raw: &[u8]) -> Result<NewPipeline, ApiError> {
    let m = body::object(raw, "pipeline")?;
    body::only(&m, FIELDS, "")?;
    let mode = match m.get("store_options") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => {
            body::only(o, &["mode"], "store_options.")?;
            body::opt_string(o, "mode", "store_options.mode")?
        }
        Some(_) => return Err(ApiError::invalid("invalid_store_options", "store_options")),
    };
    Ok(NewPipeline {
        name: body::opt_string(&m, "name", "name")?
            .ok_or_else(|| ApiError::invalid("missing_parameter", "name"))?,
        description: body::opt_string(&m, "description", "description")?,
        mode,
        default_object_timeout: body::opt_int(
            &m,
            "default_object_timeout",
            "invalid_default_object_timeout",
        )?,
    })
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    Expand::nothing(&params)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubWrite)?;
    let new = new_pipeline(&raw)?;
    let now = state.clock.now_ms();
    let p = state
        .catalog
        .call(move |c| pipelines::create(c, &new, now))
        .await?;
    tracing::info!(pipeline = %p.id, mode = %p.mode, "created pipeline");
    Ok(rendering.respond(StatusCode::CREATED, json!({ "pipeline": pipeline_json(&p) })))
}

pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[LIST])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    Expand::nothing(&params)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubRead)?;
    let paging = params.paging(1)?;
    let sort = match params.get("sort") {
        None => SortKey::CreatedAt,
        Some(s) => SortKey::parse(s).ok_or_else(|| ApiError::invalid("invalid_sort", "sort"))?,
    };
    let (rows, total) = state
        .catalog
        .call(move |c| {
            Ok(catalog_pipelines::list(
                c,
                sort,
                paging.direction > 0,
                paging.start,
                paging.limit,
            )?)
        })
        .await?;
    Ok(rendering.ok(json!({
        "pipelines": rows.iter().map(pipeline_json).collect::<Vec<_>>(),
        "total": total,
        "start": paging.start,
        "limit": paging.limit,
    })))
}

pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    Expand::nothing(&params)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubRead)?;
    if !ids::is_id(&path) {
        return Err(pipelines::not_found());
    }
    let id = path.into_inner();
    let p = state
        .catalog
        .call(move |c| Ok(catalog_pipelines::get(c, &id)?))
        .await?
        .ok_or_else(pipelines::not_found)?;
    Ok(rendering.ok(json!({ "pipeline": pipeline_json(&p) })))
}

/// `DELETE /v1/pipelines/ID[?force=true]`: 204; 409 `pipeline_not_empty` while it holds
/// files and `force` is not set.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[&["force"]])?;
    Rendering::negotiate(&req, &params)?;
    Expand::nothing(&params)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubWrite)?;
    let force = params.flag("force")?;
    if !ids::is_id(&path) {
        return Err(pipelines::not_found());
    }
    let id = path.into_inner();
    let now = state.clock.now_ms();
    let store = state.store.clone();
    let pid = id.clone();
    let deleted = state
        .catalog
        .call(move |c| pipelines::delete(c, &store, &pid, force, now))
        .await?;
    if deleted.files > 0 {
        state.cache.invalidate_files();
    }
    tracing::info!(pipeline = %id, files = deleted.files, jobs = deleted.jobs, force, "deleted pipeline");
    Ok(HttpResponse::build(StatusCode::NO_CONTENT).finish())
}
