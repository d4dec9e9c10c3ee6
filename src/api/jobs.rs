//! `POST/GET /v1/jobs/`, `GET/PUT /v1/jobs/ID` (SPEC §4).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::base_url;
use super::body;
use super::expand::Expand;
use super::files::{self, file_link};
use super::params::{Params, LIST};
use super::pipelines::{pipeline_json, pipeline_link};
use super::render::Rendering;
use crate::auth::{authenticate, Scope};
use crate::catalog::files::FileRow;
use crate::catalog::pipelines::{self as catalog_pipelines, PipelineRow};
use crate::error::ApiError;
use crate::ids;
use crate::jobs::{self, JobStatus, JobView, ListQuery, NewJob, Progress, SortKey};
use crate::state::AppState;

const LIST_FILTERS: &[&str] = &["status", "pipeline.id", "autograph", "input.file.name"];
/// A job's expandable links: `file` (input and outputs) and `pipeline`.
const EXPANDABLE: &[&str] = &["file", "pipeline"];

/// A whole file as an expanded link shows it (with its own `href`).
fn expanded_file(f: &FileRow, base: &str) -> Value {
    files::expanded_file(f, &[], base)
}

/// A whole pipeline as an expanded link shows it (with its own `href`).
pub fn expanded_pipeline(p: &PipelineRow, base: &str) -> Value {
    let mut v = pipeline_json(p);
    v["href"] = json!(format!("{base}/v1/pipelines/{}", p.id));
    v
}

/// A whole job as an expanded link shows it: as `GET /v1/jobs/ID` does, its own links
/// unexpanded, with its own `href`.
pub fn expanded_job(v: &JobView, base: &str) -> Value {
    let mut j = job_json(v, Expand::default(), &HashMap::new(), base);
    j["href"] = json!(format!("{base}/v1/jobs/{}", v.job.id));
    j
}

/// The MediaHub job resource (without its wrapper).
fn job_json(v: &JobView, x: Expand, pipelines: &HashMap<String, PipelineRow>, base: &str) -> Value {
    let j = &v.job;
    let file = |f: &FileRow| {
        if x.has("file") {
            expanded_file(f, base)
        } else {
            file_link(&f.id, base)
        }
    };
    let input_file = match (&j.input_file_id, &v.input_file) {
        (None, _) => Value::Null,
        (Some(_), Some(f)) => file(f),
        // Deleted since: the link, and when expanding, the name it had.
        (Some(id), None) => {
            let mut l = file_link(id, base);
            if x.has("file") {
                l["name"] = json!(j.input_file_name);
            }
            l
        }
    };
    let pipeline = match pipelines.get(&j.pipeline_id) {
        Some(p) if x.has("pipeline") => expanded_pipeline(p, base),
        _ => pipeline_link(&j.pipeline_id, base),
    };
    let outputs: Vec<Value> = v
        .outputs
        .iter()
        .map(|o| {
            json!({
                "output_name": o.output_name,
                "object_key": o.object_key,
                "percentage_completed": o.percentage_completed(j),
                "file": o.file.as_ref().map(file).unwrap_or(Value::Null),
            })
        })
        .collect();
    let user_data = j
        .user_data
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .unwrap_or(Value::Null);
    json!({
        "id": j.id,
        "status": j.status.as_str(),
        "percentage_completed": j.percentage_completed,
        "pipeline": pipeline,
        "input": {"input_name": j.input_name, "file": input_file},
        "output_prefix": j.output_prefix,
        "outputs": outputs,
        "user_data": user_data,
        "created_at": j.created_at,
        "updated_at": j.updated_at,
        "started_at": j.started_at,
        "finished_at": j.finished_at,
    })
}

/// Loads the pipelines of `views` when they are to be expanded.
fn pipelines_of(
    c: &rusqlite::Connection,
    views: &[JobView],
    x: Expand,
) -> Result<HashMap<String, PipelineRow>, ApiError> {
    let mut out = HashMap::new();
    if !x.has("pipeline") {
        return Ok(out);
    }
    for v in views {
        if !out.contains_key(&v.job.pipeline_id) {
            if let Some(p) = catalog_pipelines::get(c, &v.job.pipeline_id)? {
                out.insert(p.id.clone(), p);
            }
        }
    }
    Ok(out)
}

const JOB_FIELDS: &[&str] = &["pipeline", "input", "output_prefix", "outputs", "user_data"];

/// `{"job":{pipeline:{id}, input:{input_name, file:{id}?}, output_prefix, outputs:[{output_name}], user_data}}`.
fn new_job(raw: &[u8]) -> Result<NewJob, ApiError> {
    let m = body::object(raw, "job")?;
    body::only(&m, JOB_FIELDS, "")?;
    let pipeline_id = body::link_id(m.get("pipeline").unwrap_or(&Value::Null), "pipeline.id")?
        .ok_or_else(|| ApiError::invalid("missing_parameter", "pipeline.id"))?;
    let (input_name, input_file_id) = match m.get("input") {
        None | Some(Value::Null) => (None, None),
        Some(Value::Object(i)) => {
            body::only(i, &["input_name", "file"], "input.")?;
            (
                body::opt_string(i, "input_name", "input.input_name")?,
                body::link_id(i.get("file").unwrap_or(&Value::Null), "input.file.id")?,
            )
        }
        Some(_) => return Err(ApiError::invalid("invalid_value", "input")),
    };
    let outputs = match m.get("outputs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|o| match o {
                Value::Object(o) => {
                    body::only(o, &["output_name"], "outputs.")?;
                    body::opt_string(o, "output_name", "outputs.output_name")?
                        .ok_or_else(|| ApiError::invalid("missing_parameter", "outputs.output_name"))
                }
                _ => Err(ApiError::invalid("invalid_value", "outputs")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::invalid("invalid_value", "outputs")),
    };
    let user_data = match m.get("user_data") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.to_string()),
    };
    Ok(NewJob {
        pipeline_id,
        input_name,
        input_file_id,
        output_prefix: body::opt_string(&m, "output_prefix", "output_prefix")?,
        outputs,
        user_data,
        app_id: None,
    })
}

/// `{"job":{"status":"…","percentage_completed":N}}`; at least one of the two.
fn progress(raw: &[u8]) -> Result<Progress, ApiError> {
    let m = body::object(raw, "job")?;
    body::only(&m, &["status", "percentage_completed"], "")?;
    let status = match body::opt_string(&m, "status", "status")? {
        None => None,
        Some(s) => Some(JobStatus::parse(&s).ok_or_else(|| ApiError::invalid("invalid_status", "status"))?),
    };
    let pct = body::opt_int(&m, "percentage_completed", "invalid_percentage")?;
    if pct.is_some_and(|p| !(0..=100).contains(&p)) {
        return Err(ApiError::invalid("invalid_percentage", "percentage_completed"));
    }
    if status.is_none() && pct.is_none() {
        return Err(ApiError::invalid("missing_parameter", "status"));
    }
    Ok(Progress {
        status,
        percentage_completed: pct,
    })
}

/// `POST /v1/jobs/`: 201 with the job in `QUEUED`.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    let principal = authenticate(&state, &req, &params).await?;
    principal.require(Scope::MediahubSubmitJobs)?;
    let mut new = new_job(&raw)?;
    new.app_id = Some(principal.app_id);
    let now = state.clock.now_ms();
    let (view, pipelines) = state
        .catalog
        .call(move |c| {
            let view = jobs::create(c, &new, now)?;
            let p = pipelines_of(c, std::slice::from_ref(&view), x)?;
            Ok((view, p))
        })
        .await?;
    tracing::info!(job = %view.job.id, pipeline = %view.job.pipeline_id, "created job");
    let base = base_url(&req, &state.config);
    Ok(rendering.respond(
        StatusCode::CREATED,
        json!({ "job": job_json(&view, x, &pipelines, &base) }),
    ))
}

/// `PUT /v1/jobs/ID`: the pipeline reports status and progress.
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    authenticate(&state, &req, &params)
        .await?
        .require(Scope::MediahubSubmitJobs)?;
    if !ids::is_id(&path) {
        return Err(jobs::not_found());
    }
    let p = progress(&raw)?;
    let id = path.into_inner();
    let now = state.clock.now_ms();
    let (view, pipelines) = state
        .catalog
        .call(move |c| {
            let view = jobs::update(c, &id, &p, now)?;
            let pl = pipelines_of(c, std::slice::from_ref(&view), x)?;
            Ok((view, pl))
        })
        .await?;
    tracing::info!(job = %view.job.id, status = view.job.status.as_str(), "job progress");
    let base = base_url(&req, &state.config);
    Ok(rendering.ok(json!({ "job": job_json(&view, x, &pipelines, &base) })))
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
    if !ids::is_id(&path) {
        return Err(jobs::not_found());
    }
    let id = path.into_inner();
    let now = state.clock.now_ms();
    let (view, pipelines) = state
        .catalog
        .call(move |c| {
            let view = jobs::view(c, &id, now)?.ok_or_else(jobs::not_found)?;
            let p = pipelines_of(c, std::slice::from_ref(&view), x)?;
            Ok((view, p))
        })
        .await?;
    let base = base_url(&req, &state.config);
    Ok(rendering.ok(json!({ "job": job_json(&view, x, &pipelines, &base) })))
}

/// `GET /v1/jobs/`: filters `status`, `pipeline.id`, `autograph`, `input.file.name`;
/// `sort=created_at|updated_at`, `direction`, `start`, `limit`.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[LIST, LIST_FILTERS])?;
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
    let status = match params.get("status") {
        None => None,
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| ApiError::invalid("invalid_status", "status"))?),
    };
    let pipeline_id = match params.get("pipeline.id") {
        None => None,
        Some(v) if ids::is_id(v) => Some(v.to_string()),
        Some(_) => return Err(ApiError::invalid("invalid_id", "pipeline.id")),
    };
    let q = ListQuery {
        status,
        pipeline_id,
        autograph: params.bool("autograph")?,
        // An empty search (`input.file.name=`) filters nothing.
        input_file_name: params
            .get("input.file.name")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        sort,
        ascending: paging.direction > 0,
        start: paging.start,
        limit: paging.limit,
        now_ms: state.clock.now_ms(),
    };
    let (views, total, pipelines) = state
        .catalog
        .call(move |c| {
            let (views, total) = jobs::list(c, &q)?;
            let p = pipelines_of(c, &views, x)?;
            Ok((views, total, p))
        })
        .await?;
    let base = base_url(&req, &state.config);
    let list: Vec<Value> = views.iter().map(|v| job_json(v, x, &pipelines, &base)).collect();
    Ok(rendering.ok(json!({
        "jobs": list,
        "total": total,
        "start": paging.start,
        "limit": paging.limit,
    })))
}
