//! `POST /v1/files/uploads/` (three-step create, or one-shot with a multipart `file`),
//! the form post of each chunk, `PUT` to complete, `GET` to poll (SPEC §3).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::base_url;
use super::expand::Expand;
use super::files::{entries_of, file_json, file_link};
use super::jobs::expanded_pipeline;
use super::multipart::{self, Form};
use super::params::Params;
use super::render::Rendering;
use crate::archive::Entry;
use crate::auth::signed::accepted_params;
use crate::auth::{authenticate, Principal, Scope};
use crate::catalog::files::FileRow;
use crate::catalog::pipelines::{self as catalog_pipelines, PipelineRow};
use crate::catalog::uploads::{self as catalog_uploads, ChunkRow, Status, UploadRow};
use crate::error::ApiError;
use crate::files::digest::Expected;
use crate::files::uploads::{self, NewUpload, MAX_CHUNKS};
use crate::files::{self, Content, Placement, Source};
use crate::ids;
use crate::state::AppState;

/// Query parameters (and, for the one-shot form, text fields before `file`) of a new upload.
const UPLOAD_PARAMS: &[&str] = &["object_key", "pipeline_id", "expires_at", "ip", "autograph"];
/// Text fields of a form post to `form_post_url`.
const FORM_POST_FIELDS: &[&str] = &["upload_id", "upload_token", "chunk", "chunks", "Content-Type"];
/// An upload's expandable links. Its `file` is whole already once the upload completed
/// (before, the file does not exist yet and stays a link), so `file` changes nothing.
const EXPANDABLE: &[&str] = &["file", "pipeline"];

/// The upload's pipeline when `x` expands it (`None` otherwise, or when deleted since).
fn pipeline_of(c: &rusqlite::Connection, u: &UploadRow, x: Expand) -> Result<Option<PipelineRow>, ApiError> {
    match &u.pipeline_id {
        Some(id) if x.has("pipeline") => Ok(catalog_pipelines::get(c, id)?),
        _ => Ok(None),
    }
}

/// [`pipeline_of`] in its own catalog call (none when not expanded).
async fn load_pipeline(state: &AppState, u: &UploadRow, x: Expand) -> Result<Option<PipelineRow>, ApiError> {
    if u.pipeline_id.is_none() || !x.has("pipeline") {
        return Ok(None);
    }
    let u = u.clone();
    state.catalog.call(move |c| pipeline_of(c, &u, x)).await
}

/// What the client asked of a new upload.
struct Options {
    object_key: Option<String>,
    pipeline_id: Option<String>,
    /// `None`: the default applies; `Some(0)`: never.
    expires_at: Option<i64>,
    autograph: bool,
}

fn options(p: &Params, now_ms: i64) -> Result<Options, ApiError> {
    let object_key = p.get("object_key").map(str::to_string);
    if let Some(k) = &object_key {
        files::check_object_key(k)?;
    }
    let pipeline_id = match p.get("pipeline_id") {
        None | Some("") => None,
        Some(id) if ids::is_id(id) => Some(id.to_string()),
        Some(_) => return Err(ApiError::not_found("pipeline").with_param("pipeline_id")),
    };
    let expires_at = match p.u64_in("expires_at", 0, i64::MAX as u64, "invalid_expires_at")? {
        None => None,
        Some(0) => Some(0),
        Some(ms) if (ms as i64) <= now_ms => {
            return Err(ApiError::invalid("expires_at_in_past", "expires_at"))
        }
        Some(ms) => Some(ms as i64),
    };
    Ok(Options {
        object_key,
        pipeline_id,
        expires_at,
        autograph: p.flag("autograph")?,
    })
}

/// Digests the request carries for its data (`Content-MD5`, `X-Checksum-SHA256`).
pub fn request_digests(req: &HttpRequest) -> Result<Expected, ApiError> {
    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    Expected::parse(h("content-md5"), h("x-checksum-sha256"))
        .map_err(|which| ApiError::invalid("invalid_digest", which))
}

/// Digests sent as form fields before `file` (as in an S3 POST form), taken out of `fields`.
fn field_digests(fields: &mut Vec<(String, String)>) -> Result<Expected, ApiError> {
    let mut take = |name: &str| -> Result<Option<String>, ApiError> {
        let mut found = None;
        let mut err = None;
        fields.retain(|(k, v)| {
            if !k.eq_ignore_ascii_case(name) {
                return true;
            }
            if found.replace(v.clone()).is_some() {
                err = Some(ApiError::invalid("duplicate_parameter", name.to_string()));
            }
            false
        });
        err.map_or(Ok(found), Err)
    };
    let md5 = take("Content-MD5")?;
    let sha = take("X-Checksum-SHA256")?;
    Expected::parse(md5.as_deref(), sha.as_deref())
        .map_err(|which| ApiError::invalid("invalid_digest", which))
}

fn bad_digest(which: &str) -> ApiError {
    ApiError::invalid("bad_digest", which.to_string())
}

/// What an upload resource shows besides the upload: its chunks, its file once
/// completed (with the archive's entries) and its pipeline when expanded.
#[derive(Default)]
struct Shown<'a> {
    token: Option<&'a str>,
    chunks: &'a [ChunkRow],
    file: Option<&'a FileRow>,
    entries: &'a [Entry],
    pipeline: Option<&'a PipelineRow>,
}

/// The upload resource (without its wrapper).
fn upload_json(u: &UploadRow, shown: Shown<'_>, base: &str) -> Value {
    let Shown {
        token,
        chunks,
        file,
        entries,
        pipeline,
    } = shown;
    let open = u.status == Status::Uploading;
    let (url, form) = match (open, token) {
        (true, Some(t)) => (
            json!(format!("{base}/v1/files/uploads/{}/form", u.id)),
            json!({"upload_id": u.id, "upload_token": t, "chunk": "0", "chunks": "1"}),
        ),
        _ => (Value::Null, Value::Null),
    };
    let file = match file {
        Some(f) => {
            let mut v = file_json(f, entries, base);
            v["href"] = json!(format!("{base}/v1/files/{}", f.id));
            v
        }
        None => file_link(&u.file_id, base),
    };
    let pipeline = match (&u.pipeline_id, pipeline) {
        (Some(_), Some(p)) => expanded_pipeline(p, base),
        (Some(id), None) => json!({"id": id, "href": format!("{base}/v1/pipelines/{id}")}),
        (None, _) => Value::Null,
    };
    json!({
        "id": u.id,
        "status": u.status.as_str(),
        "form_post_url": url,
        "form_post_params": form,
        "nb_chunks": u.nb_chunks,
        "chunks_received": if open { json!(chunks.iter().map(|c| c.idx).collect::<Vec<_>>()) } else { Value::Null },
        "bytes_received": if open { json!(chunks.iter().map(|c| c.size).sum::<i64>()) } else { Value::Null },
        "object_key": u.object_key,
        "pipeline": pipeline,
        "autograph": u.autograph,
        "file": file,
        "expires_at": if u.expires_at == 0 { Value::Null } else { json!(u.expires_at) },
        "failure_reason": u.failure,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

/// `POST /v1/files/uploads/`: a multipart body with a `file` field stores it at once
/// (201, `COMPLETED`); otherwise a three-step upload is opened (201, `UPLOADING`).
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Reads nothing yet; it holds the body so that a refusal never drains it (UnreadBody).
    let mut form = Form::new(&req, payload);
    let answer = create_inner(&state, &req, &mut form).await;
    multipart::keep_unread_on_error(answer, form)
}

async fn create_inner(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    form: &mut Form,
) -> Result<HttpResponse, ApiError> {
    let query = Params::parse(req.query_string(), &[UPLOAD_PARAMS])?;
    let rendering = Rendering::negotiate(req, &query)?;
    let x = Expand::parse(&query, EXPANDABLE)?;
    let principal = authenticate(state, req, &query).await?;
    principal.require(Scope::MediahubWrite)?;
    if multipart::is_multipart(req) {
        return one_shot(state, req, form, query, rendering, x, principal).await;
    }
    let now = state.clock.now_ms();
    let opts = options(&query, now)?;
    let st = state.clone();
    let (u, token, pipeline) = state
        .catalog
        .call(move |c| {
            let pipeline =
                files::check_placement(c, opts.pipeline_id.as_deref(), opts.object_key.as_deref())?;
            let expires_at = files::expiry(
                opts.expires_at,
                pipeline.as_ref(),
                st.config.storage.default_file_ttl,
                now,
            );
            let (u, token) = uploads::create(
                c,
                &st.secrets,
                &NewUpload {
                    app_id: Some(principal.app_id),
                    object_key: opts.object_key,
                    pipeline_id: opts.pipeline_id,
                    autograph: opts.autograph,
                    expires_at,
                },
                now,
            )?;
            let pipeline = pipeline_of(c, &u, x)?;
            Ok((u, token, pipeline))
        })
        .await?;
    let base = base_url(req, &state.config);
    let shown = Shown {
        token: Some(&token),
        pipeline: pipeline.as_ref(),
        ..Shown::default()
    };
    Ok(rendering.respond(
        StatusCode::CREATED,
        json!({ "upload": upload_json(&u, shown, &base) }),
    ))
}

async fn one_shot(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    form: &mut Form,
    query: Params,
    rendering: Rendering,
    x: Expand,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    multipart::check_length(req, state.config.storage.max_upload_size)?;
    let request_expected = request_digests(req)?;
    let (fields, part) = form.until_file().await?;
    let part = part.ok_or_else(|| ApiError::invalid("missing_file", multipart::FILE_FIELD))?;
    let (u, f) = store_form_file(
        state,
        form,
        OneShot {
            query: query.pairs().to_vec(),
            fields,
            part,
            request_expected,
            app_id: Some(principal.app_id.clone()),
        },
    )
    .await?;
    let entries = entries_of(state, &f).await?;
    let pipeline = load_pipeline(state, &u, x).await?;
    let base = base_url(req, &state.config);
    let shown = Shown {
        file: Some(&f),
        entries: &entries,
        pipeline: pipeline.as_ref(),
        ..Shown::default()
    };
    Ok(rendering.respond(
        StatusCode::CREATED,
        json!({ "upload": upload_json(&u, shown, &base) }),
    ))
}

/// A one-shot upload whose text fields have been read, up to its `file` part.
pub struct OneShot {
    /// Query parameters (the options may come there, or as fields).
    pub query: Vec<(String, String)>,
    /// Text fields that came before `file` (`object_key`, `Content-MD5`, …).
    pub fields: Vec<(String, String)>,
    pub part: multipart::FilePart,
    /// Digests sent as request headers.
    pub request_expected: Expected,
    /// The uploading application; `None` for the admin console.
    pub app_id: Option<String>,
}

/// Checks the options, streams the `file` part to disk and stores it (durably) as a new
/// file. The API's one-shot upload and the console's upload form both store through
/// here, so the console accepts exactly what the API accepts.
pub async fn store_form_file(
    state: &AppState,
    form: &mut Form,
    o: OneShot,
) -> Result<(UploadRow, FileRow), ApiError> {
    let max = state.config.storage.max_upload_size;
    let OneShot {
        query,
        mut fields,
        part,
        request_expected,
        app_id,
    } = o;
    let in_fields = field_digests(&mut fields)?;
    let mut pairs = query;
    pairs.extend(fields);
    let all = Params::from_pairs(pairs, &[UPLOAD_PARAMS])?;
    let now = state.clock.now_ms();
    let opts = options(&all, now)?;
    let expected = request_expected
        .merge(in_fields)
        .and_then(|e| e.merge(part.expected.clone()))
        .map_err(|which| ApiError::invalid("conflicting_digests", which))?;

    let (pid, key) = (opts.pipeline_id.clone(), opts.object_key.clone());
    let pipeline = state
        .catalog
        .call(move |c| files::check_placement(c, pid.as_deref(), key.as_deref()))
        .await?;

    let data = multipart::stream_to_temp(part.field, &state.store, max).await?;
    if let Err(which) = expected.verify(&data.digests) {
        return Err(bad_digest(which));
    }
    form.finish().await?;

    let file_id = ids::new_id(now.div_euclid(1000));
    let name = display_name(part.filename.as_deref(), opts.object_key.as_deref(), &file_id);
    let placement = Placement {
        object_key: opts.object_key.clone().unwrap_or_else(|| file_id.clone()),
        file_id,
        name,
        pipeline_id: opts.pipeline_id.clone(),
        job_id: None,
        app_id,
        autograph: opts.autograph,
        expires_at: files::expiry(
            opts.expires_at,
            pipeline.as_ref(),
            state.config.storage.default_file_ttl,
            now,
        ),
        archives: state.config.archives.limits(),
    };
    let content = Content {
        source: Source::Temp(data.temp),
        digests: data.digests,
        head: data.head,
    };
    let st = state.clone();
    let (u, f) = state
        .catalog
        .call(move |c| uploads::store_one_shot(c, &st.store, &st.secrets, &placement, content, now))
        .await?;
    tracing::info!(file = %f.id, size = f.size, "stored upload");
    state.metrics.upload_completed(f.size);
    Ok((u, f))
}

/// The display name: the part's file name, else the object key's last segment, else the id.
fn display_name(filename: Option<&str>, object_key: Option<&str>, file_id: &str) -> String {
    let clean = |s: &str| {
        let s: String = s.chars().filter(|c| !c.is_control()).collect();
        let s = s.trim().to_string();
        (!s.is_empty()).then_some(s)
    };
    filename
        .and_then(clean)
        .or_else(|| {
            object_key
                .and_then(|k| k.rsplit(['/', '\\']).next())
                .and_then(clean)
        })
        .unwrap_or_else(|| file_id.to_string())
}

/// An upload of the calling application, by id (404 otherwise).
async fn owned_upload(state: &AppState, principal: &Principal, id: &str) -> Result<UploadRow, ApiError> {
    if !ids::is_id(id) {
        return Err(uploads::not_found());
    }
    let id = id.to_string();
    let u = state
        .catalog
        .call(move |c| Ok(catalog_uploads::get(c, &id)?))
        .await?
        .ok_or_else(uploads::not_found)?;
    if u.app_id.as_deref() != Some(principal.app_id.as_str()) {
        return Err(uploads::not_found());
    }
    Ok(u)
}

/// The resource as `GET` shows it: with its chunks, and the file once completed.
async fn present(state: &AppState, u: UploadRow, x: Expand, base: &str) -> Result<Value, ApiError> {
    let id = u.id.clone();
    let fid = u.file_id.clone();
    let completed = u.status == Status::Completed;
    let upload = u.clone();
    let (chunks, file, entries, pipeline) = state
        .catalog
        .call(move |c| {
            let chunks = catalog_uploads::chunks(c, &id)?;
            let file = if completed {
                crate::catalog::files::get(c, &fid)?
            } else {
                None
            };
            let entries = match &file {
                Some(f) if f.kind == "archive" => crate::catalog::archives::list(c, &f.id)?,
                _ => Vec::new(),
            };
            let pipeline = pipeline_of(c, &upload, x)?;
            Ok((chunks, file, entries, pipeline))
        })
        .await?;
    let token = uploads::token_of(&state.secrets, &u);
    let shown = Shown {
        token: token.as_deref(),
        chunks: &chunks,
        file: file.as_ref(),
        entries: &entries,
        pipeline: pipeline.as_ref(),
    };
    Ok(json!({ "upload": upload_json(&u, shown, base) }))
}

/// `GET /v1/files/uploads/ID`: poll an upload (its creator only).
pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[accepted_params(&req)])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    let principal = authenticate(&state, &req, &params).await?;
    if !principal.scopes.grants(Scope::MediahubWrite) {
        principal.require(Scope::MediahubRead)?;
    }
    let u = owned_upload(&state, &principal, &path).await?;
    let base = base_url(&req, &state.config);
    Ok(rendering.ok(present(&state, u, x, &base).await?))
}

/// `POST` to `form_post_url`: the params (`upload_token` first of all), then the data in
/// `file`. Authorised by the upload's token, not a bearer token, like a presigned POST.
pub async fn form_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let mut form = Form::new(&req, payload);
    let answer = form_post_inner(&state, &req, path.into_inner(), &mut form).await;
    multipart::keep_unread_on_error(answer, form)
}

async fn form_post_inner(
    state: &web::Data<AppState>,
    req: &HttpRequest,
    id: String,
    form: &mut Form,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    let rendering = Rendering::negotiate(req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    if !ids::is_id(&id) {
        return Err(uploads::not_found());
    }
    let max = state.config.storage.max_upload_size;
    multipart::check_length(req, max)?;
    if !multipart::is_multipart(req) {
        return Err(ApiError::bad_request("multipart_expected"));
    }
    let request_expected = request_digests(req)?;
    let uid = id.clone();
    let u = state
        .catalog
        .call(move |c| Ok(catalog_uploads::get(c, &uid)?))
        .await?
        .ok_or_else(uploads::not_found)?;

    let (mut fields, part) = form.until_file().await?;
    let in_fields = field_digests(&mut fields)?;
    let fields = Params::from_pairs(fields, &[FORM_POST_FIELDS])?;
    let Some(token) = fields.get("upload_token") else {
        return Err(ApiError::invalid_token("missing_upload_token").with_param("upload_token"));
    };
    if !uploads::token_matches(&state.secrets, &u, token) {
        return Err(ApiError::invalid_token("invalid_upload_token").with_param("upload_token"));
    }
    if fields.get("upload_id").is_some_and(|v| v != id) {
        return Err(ApiError::invalid("upload_id_mismatch", "upload_id"));
    }
    let chunks = fields
        .u64_in("chunks", 1, MAX_CHUNKS as u64, "invalid_chunks")?
        .unwrap_or(1) as i64;
    let chunk = fields
        .u64_in("chunk", 0, MAX_CHUNKS as u64, "invalid_chunk")?
        .unwrap_or(0) as i64;
    if chunk >= chunks {
        return Err(ApiError::invalid("invalid_chunk", "chunk"));
    }
    let part = part.ok_or_else(|| ApiError::invalid("missing_file", multipart::FILE_FIELD))?;
    if u.status != Status::Uploading {
        return Err(ApiError::conflict("upload_not_open"));
    }
    let expected = request_expected
        .merge(in_fields)
        .and_then(|e| e.merge(part.expected.clone()))
        .map_err(|which| ApiError::invalid("conflicting_digests", which))?;

    let uid = id.clone();
    let received = state
        .catalog
        .call(move |c| uploads::received_bytes(c, &uid, chunk))
        .await?;
    let limit = max.saturating_sub(received);
    let data = multipart::stream_to_temp(part.field, &state.store, limit).await?;
    if let Err(which) = expected.verify(&data.digests) {
        return Err(bad_digest(which));
    }
    form.finish().await?;

    let now = state.clock.now_ms();
    let st = state.clone();
    let name = part.filename.clone();
    let uid = id.clone();
    let u = state
        .catalog
        .call(move |c| uploads::save_chunk(c, &st.store, &uid, chunk, chunks, name, data, max, now))
        .await?;
    let base = base_url(req, &state.config);
    Ok(rendering.ok(present(state, u, x, &base).await?))
}

/// `PUT /v1/files/uploads/ID` with `{"upload":{"nb_chunks":N}}`: assembles the chunks
/// into the file (`COMPLETING` → `COMPLETED`, or `FAILED` with a reason).
pub async fn complete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    let x = Expand::parse(&params, EXPANDABLE)?;
    let principal = authenticate(&state, &req, &params).await?;
    principal.require(Scope::MediahubWrite)?;
    let nb_chunks = nb_chunks_of(&body)?;
    let expected = request_digests(&req)?;
    let u = owned_upload(&state, &principal, &path).await?;

    let now = state.clock.now_ms();
    let uid = u.id.clone();
    let (u, chunks) = state
        .catalog
        .call(move |c| uploads::begin_complete(c, &uid, nb_chunks, now))
        .await?;
    let base = base_url(&req, &state.config);
    if u.status == Status::Completed {
        return Ok(rendering.ok(present(&state, u, x, &base).await?));
    }
    let first_name = chunks.first().and_then(|c| c.name.clone());
    let placement = Placement {
        file_id: u.file_id.clone(),
        name: display_name(first_name.as_deref(), u.object_key.as_deref(), &u.file_id),
        object_key: u.object_key.clone().unwrap_or_else(|| u.file_id.clone()),
        pipeline_id: u.pipeline_id.clone(),
        job_id: None,
        app_id: u.app_id.clone(),
        autograph: u.autograph,
        expires_at: u.expires_at,
        archives: state.config.archives.limits(),
    };
    let st = state.clone();
    let uid = u.id.clone();
    let done = state
        .catalog
        .call(move |c| {
            let r = uploads::complete(c, &st.store, &u, &chunks, &placement, &expected, now);
            let u = catalog_uploads::get(c, &u.id)?;
            Ok((r, u))
        })
        .await?;
    match done {
        (Ok(f), Some(u)) => {
            tracing::info!(file = %f.id, upload = %uid, size = f.size, "completed upload");
            state.metrics.upload_completed(f.size);
            let entries = entries_of(&state, &f).await?;
            let pipeline = load_pipeline(&state, &u, x).await?;
            let shown = Shown {
                file: Some(&f),
                entries: &entries,
                pipeline: pipeline.as_ref(),
                ..Shown::default()
            };
            Ok(rendering.ok(json!({ "upload": upload_json(&u, shown, &base) })))
        }
        (Err(e), _) => Err(e),
        (Ok(_), None) => Err(uploads::not_found()),
    }
}

/// `nb_chunks` from `{"upload":{"nb_chunks":N}}` or `{"nb_chunks":N}` (number or digits).
fn nb_chunks_of(body: &[u8]) -> Result<i64, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ApiError::bad_request("invalid_body"))?;
    let n = v
        .get("upload")
        .and_then(|u| u.get("nb_chunks"))
        .or_else(|| v.get("nb_chunks"))
        .ok_or_else(|| ApiError::invalid("missing_parameter", "nb_chunks"))?;
    let n = match n {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if (1..=MAX_CHUNKS).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid("invalid_nb_chunks", "nb_chunks")),
    }
}
