//! Console pages for pipelines, jobs and the link signing keys, through the same
//! domain functions as the API and the `filegate keys` command.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use filegate_templates::console::ops as views;

use super::files::{pager, pipeline_choices};
use super::{
    catalog_failed, chrome, failed, field, format_ms, html, notice, posted, query, refusal, see_other, viewer,
};
use crate::catalog::keys::{self, KeyState};
use crate::catalog::pipelines::{self as catalog_pipelines, SortKey};
use crate::delivery::keyring::{self, Retired};
use crate::error::ApiError;
use crate::ids;
use crate::jobs::{self, JobStatus, NewJob, Progress};
use crate::pipelines::{self, NewPipeline};
use crate::state::AppState;

const PAGE: u64 = 50;
const STATUSES: [JobStatus; 4] = [
    JobStatus::Queued,
    JobStatus::Running,
    JobStatus::Success,
    JobStatus::Failed,
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/pipelines", web::get().to(pipelines_page))
        .route("/admin/pipelines", web::post().to(pipeline_create))
        .route("/admin/pipelines/{id}/delete", web::post().to(pipeline_delete))
        .route("/admin/jobs", web::get().to(jobs_page))
        .route("/admin/jobs", web::post().to(job_create))
        .route("/admin/jobs/{id}", web::post().to(job_update))
        .route("/admin/keys", web::get().to(keys_page))
        .route("/admin/keys/rotate", web::post().to(key_rotate))
        .route("/admin/keys/{id}/retire", web::post().to(key_retire));
}

fn start_of(q: &[(String, String)]) -> u64 {
    field(q, "start").parse().unwrap_or(0)
}

async fn pipelines_view(state: &AppState, start: u64) -> Result<views::PipelinesView, ApiError> {
    let (rows, total) = state
        .catalog
        .call(move |c| {
            Ok(catalog_pipelines::list(
                c,
                SortKey::CreatedAt,
                false,
                start,
                PAGE,
            )?)
        })
        .await?;
    Ok(views::PipelinesView {
        pager: pager("/admin/pipelines", &[], start, rows.len(), total, PAGE),
        items: rows
            .into_iter()
            .map(|p| views::PipelineItem {
                id: p.id,
                name: p.name,
                description: p.description,
                mode: p.mode,
                default_object_timeout: p.default_object_timeout,
                created: format_ms(p.created_at),
            })
            .collect(),
        notice: None,
        error: None,
    })
}

async fn pipelines_with(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let s = match viewer(state, req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    match pipelines_view(state, start_of(&query(req))).await {
        Ok(mut v) => {
            v.notice = notice(req);
            v.error = error;
            html(status, views::pipelines(&chrome(&s, "pipelines"), &v))
        }
        Err(_) => catalog_failed(),
    }
}

async fn pipelines_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    pipelines_with(&state, &req, StatusCode::OK, None).await
}

async fn pipeline_create(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let f = match posted(&state, &req, &body) {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    let opt = |k: &str| Some(field(&f, k).trim().to_string()).filter(|v| !v.is_empty());
    let timeout = match opt("default_object_timeout").map(|t| t.parse::<i64>()) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            let e = ApiError::invalid("invalid_default_object_timeout", "default_object_timeout");
            return pipelines_with(&state, &req, e.status(), Some(refusal(&e))).await;
        }
    };
    let new = NewPipeline {
        name: field(&f, "name").to_string(),
        description: opt("description"),
        mode: opt("mode"),
        default_object_timeout: timeout,
    };
    let now = state.clock.now_ms();
    match state.catalog.call(move |c| pipelines::create(c, &new, now)).await {
        Ok(p) => {
            tracing::info!(pipeline = %p.id, "pipeline created in the console");
            see_other("/admin/pipelines?done=pipeline_created")
        }
        Err(e) => pipelines_with(&state, &req, e.status(), Some(refusal(&e))).await,
    }
}

async fn pipeline_delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let f = match posted(&state, &req, &body) {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    let force = field(&f, "force") == "true";
    let id = path.into_inner();
    if !ids::is_id(&id) {
        let e = pipelines::not_found();
        return pipelines_with(&state, &req, e.status(), Some(refusal(&e))).await;
    }
    let now = state.clock.now_ms();
    let store = state.store.clone();
    let pid = id.clone();
    match state
        .catalog
        .call(move |c| pipelines::delete(c, &store, &pid, force, now))
        .await
    {
        Ok(d) => {
            if d.files > 0 {
                state.cache.invalidate_files();
            }
            tracing::info!(pipeline = %id, files = d.files, jobs = d.jobs, force, "pipeline deleted in the console");
            see_other("/admin/pipelines?done=pipeline_deleted")
        }
        Err(e) => pipelines_with(&state, &req, e.status(), Some(refusal(&e))).await,
    }
}

async fn jobs_with(
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
    let st = JobStatus::parse(field(&q, "status"));
    let pipeline = field(&q, "pipeline").to_string();
    let start = start_of(&q);
    let lq = jobs::ListQuery {
        status: st,
        pipeline_id: ids::is_id(&pipeline).then(|| pipeline.clone()),
        ascending: false,
        start,
        limit: PAGE,
        now_ms: state.clock.now_ms(),
        ..Default::default()
    };
    let Ok((rows, total)) = state.catalog.call(move |c| jobs::list(c, &lq)).await else {
        return catalog_failed();
    };
    let pipelines = pipeline_choices(state).await;
    let filters = [
        ("status", st.map(|s| s.as_str().to_string()).unwrap_or_default()),
        ("pipeline", pipeline.clone()),
    ];
    let v = views::JobsView {
        pager: pager("/admin/jobs", &filters, start, rows.len(), total, PAGE),
        items: rows
            .iter()
            .map(|j| views::JobItem {
                id: j.job.id.clone(),
                pipeline: pipelines
                    .iter()
                    .find(|(id, _)| *id == j.job.pipeline_id)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_else(|| j.job.pipeline_id.clone()),
                status: j.job.status.as_str().to_string(),
                percentage: j.job.percentage_completed,
                input_name: j.job.input_name.clone().unwrap_or_default(),
                output_prefix: j.job.output_prefix.clone(),
                outputs: j
                    .outputs
                    .iter()
                    .map(|o| views::OutputItem {
                        output_name: o.output_name.clone(),
                        file_id: o.file.as_ref().map(|f| f.id.clone()).unwrap_or_default(),
                    })
                    .collect(),
                created: format_ms(j.job.created_at),
                next: STATUSES
                    .iter()
                    .filter(|to| {
                        jobs::can_move(j.job.status, **to)
                            || (j.job.status == JobStatus::Running && **to == JobStatus::Running)
                    })
                    .map(|s| s.as_str())
                    .collect(),
            })
            .collect(),
        status: filters[0].1.clone(),
        pipeline,
        pipelines,
        statuses: STATUSES.iter().map(|s| s.as_str()).collect(),
        notice: notice(req),
        error,
    };
    html(status, views::jobs(&chrome(&s, "jobs"), &v))
}

async fn jobs_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    jobs_with(&state, &req, StatusCode::OK, None).await
}

async fn job_create(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let f = match posted(&state, &req, &body) {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    let opt = |k: &str| Some(field(&f, k).trim().to_string()).filter(|v| !v.is_empty());
    let new = NewJob {
        pipeline_id: field(&f, "pipeline_id").trim().to_string(),
        input_name: opt("input_name"),
        input_file_id: opt("input_file_id"),
        output_prefix: opt("output_prefix"),
        outputs: field(&f, "outputs")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        user_data: None,
        app_id: None,
    };
    if !ids::is_id(&new.pipeline_id) {
        let e = pipelines::not_found();
        return jobs_with(&state, &req, e.status(), Some(refusal(&e))).await;
    }
    let now = state.clock.now_ms();
    match state.catalog.call(move |c| jobs::create(c, &new, now)).await {
        Ok(v) => {
            tracing::info!(job = %v.job.id, "job created in the console");
            see_other("/admin/jobs?done=job_created")
        }
        Err(e) => jobs_with(&state, &req, e.status(), Some(refusal(&e))).await,
    }
}

async fn job_update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let f = match posted(&state, &req, &body) {
        Ok((_, f)) => f,
        Err(r) => return r,
    };
    let status = match field(&f, "status") {
        "" => None,
        s => match JobStatus::parse(s) {
            Some(s) => Some(s),
            None => {
                let e = ApiError::invalid("invalid_status", "status");
                return jobs_with(&state, &req, e.status(), Some(refusal(&e))).await;
            }
        },
    };
    let percentage = match field(&f, "percentage_completed").trim() {
        "" => None,
        p => match p.parse::<i64>() {
            Ok(n) if (0..=100).contains(&n) => Some(n),
            _ => {
                let e = ApiError::invalid("invalid_percentage", "percentage_completed");
                return jobs_with(&state, &req, e.status(), Some(refusal(&e))).await;
            }
        },
    };
    let id = path.into_inner();
    if !ids::is_id(&id) {
        let e = jobs::not_found();
        return jobs_with(&state, &req, e.status(), Some(refusal(&e))).await;
    }
    let p = Progress {
        status,
        percentage_completed: percentage,
    };
    let now = state.clock.now_ms();
    match state.catalog.call(move |c| jobs::update(c, &id, &p, now)).await {
        Ok(v) => {
            tracing::info!(job = %v.job.id, status = v.job.status.as_str(), "job progress set in the console");
            see_other("/admin/jobs?done=job_updated")
        }
        Err(e) => jobs_with(&state, &req, e.status(), Some(refusal(&e))).await,
    }
}

async fn keys_with(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let s = match viewer(state, req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Ok(rows) = state.catalog.call(|c| Ok(keys::list(c)?)).await else {
        return catalog_failed();
    };
    let current = rows
        .iter()
        .rev()
        .find(|k| k.state == KeyState::Active)
        .map(|k| k.id);
    let v = views::KeysView {
        keys: rows
            .iter()
            .rev()
            .map(|k| views::KeyItem {
                id: k.id,
                state: match k.state {
                    KeyState::Retired => "retired",
                    KeyState::Active if Some(k.id) == current => "current",
                    KeyState::Active => "active",
                },
                created: format_ms(k.created_at),
                retired: k.retired_at.map(format_ms).unwrap_or_default(),
            })
            .collect(),
        notice: notice(req),
        error,
    };
    html(status, views::keys(&chrome(&s, "keys"), &v))
}

async fn keys_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    keys_with(&state, &req, StatusCode::OK, None).await
}

async fn key_rotate(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Err(r) = posted(&state, &req, &body) {
        return r;
    }
    let now = state.clock.now_ms();
    let st = state.clone();
    let created = state
        .catalog
        .call(move |c| Ok(keyring::create(c, &st.secrets, now)?))
        .await;
    match created {
        Ok(id) => {
            // This process signs with it at once (others within keyring::RELOAD_EVERY_SECS).
            if let Err(e) = state.keys.reload(now).await {
                tracing::warn!(error = %e, "reloading signing keys after a rotation");
            }
            tracing::info!(key = id, "signing key rotated in the console");
            see_other("/admin/keys?done=rotated")
        }
        Err(e) => failed(e.status(), &refusal(&e)),
    }
}

async fn key_retire(
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
        return keys_with(
            &state,
            &req,
            StatusCode::BAD_REQUEST,
            Some("Tick the confirmation box to retire a key: its links stop working.".into()),
        )
        .await;
    }
    let Ok(id) = path.parse::<u32>() else {
        return keys_with(
            &state,
            &req,
            StatusCode::NOT_FOUND,
            Some("No such signing key.".into()),
        )
        .await;
    };
    let now = state.clock.now_ms();
    let st = state.clone();
    let done = state
        .catalog
        .call(move |c| Ok(keyring::retire(c, &st.secrets, id, now)?))
        .await;
    match done {
        Ok(Retired::Done { replaced_by }) => {
            if let Err(e) = state.keys.reload(now).await {
                tracing::warn!(error = %e, "reloading signing keys after a retirement");
            }
            tracing::info!(key = id, ?replaced_by, "signing key retired in the console");
            see_other("/admin/keys?done=retired")
        }
        Ok(Retired::AlreadyRetired) => see_other("/admin/keys"),
        Ok(Retired::NotFound) => {
            keys_with(
                &state,
                &req,
                StatusCode::NOT_FOUND,
                Some("No such signing key.".into()),
            )
            .await
        }
        Err(e) => failed(e.status(), &refusal(&e)),
    }
}
