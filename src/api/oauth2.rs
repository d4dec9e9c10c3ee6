//! `POST /v1/oauth2/token`: client credentials → bearer token (SPEC §2, RFC 6749 §4.4).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use serde_json::json;

use super::expand::Expand;
use super::params::Params;
use super::render::Rendering;
use crate::auth::apps::{self, CredentialError};
use crate::auth::{tokens, Scopes};
use crate::error::{ApiError, ErrorKind};
use crate::state::AppState;

const MAX_BODY: usize = 16 * 1024;

pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &[])?;
    let rendering = Rendering::negotiate(&req, &params)?;
    Expand::nothing(&params)?;
    if body.len() > MAX_BODY {
        return Err(ApiError::new(ErrorKind::PayloadTooLarge, "body_too_large"));
    }
    let form = read_form(&req, &body)?;
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());

    match field("grant_type") {
        None | Some("") => return Err(ApiError::invalid("missing_parameter", "grant_type")),
        Some("client_credential" | "client_credentials") => {}
        Some(_) => return Err(ApiError::invalid("unsupported_grant_type", "grant_type")),
    }
    let (client_id, client_secret) = match basic_credentials(&req)? {
        Some(c) => c,
        None => match (field("client_id"), field("client_secret")) {
            (None | Some(""), _) => {
                return Err(ApiError::invalid_token("missing_client_credentials").with_param("client_id"))
            }
            (_, None) => {
                return Err(ApiError::invalid_token("missing_client_credentials").with_param("client_secret"))
            }
            (Some(id), Some(secret)) => (id.to_string(), secret.to_string()),
        },
    };
    let wanted = match field("scope") {
        None | Some("") => None,
        Some(s) => Some(Scopes::parse(s).map_err(|_| ApiError::invalid("invalid_scope", "scope"))?),
    };
    let max = state.config.tokens.max_ttl;
    let ttl = match field("expires_in") {
        None | Some("") => state.config.tokens.default_ttl,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => return Err(ApiError::invalid("invalid_expires_in", "expires_in")),
        },
    };

    let now = state.clock.now_ms();
    let st = state.clone();
    let (token, scopes) = state
        .catalog
        .call(move |c| {
            let app = match apps::verify_client(c, &st.secrets, &client_id, &client_secret)? {
                Ok(app) => app,
                Err(CredentialError::Disabled) => return Err(ApiError::invalid_token("app_disabled")),
                Err(_) => return Err(ApiError::invalid_token("invalid_client")),
            };
            let granted = apps::app_scopes(&app);
            let scopes = match wanted {
                Some(w) if !granted.covers(w) => {
                    return Err(
                        ApiError::new(ErrorKind::InsufficientScope, "scope_not_granted").with_param("scope")
                    )
                }
                Some(w) => w,
                None => granted,
            };
            Ok((tokens::issue(c, &app.id, scopes, now, ttl)?, scopes))
        })
        .await?;

    tracing::info!(client_id = %field("client_id").unwrap_or("(basic)"), expires_in = ttl, "token issued");
    let body = json!({"access_token": token, "expires_in": ttl, "token_type": "Bearer", "scope": scopes.to_string()});
    let mut res = match rendering.form {
        // RFC 6749 §5.1: the answer is a bare JSON object.
        super::render::Form::Xml => rendering.respond(StatusCode::OK, json!({ "token": body })),
        _ => rendering.respond(StatusCode::OK, body),
    };
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res.headers_mut()
        .insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    Ok(res)
}

/// The body as name/value pairs: a urlencoded form (the standard) or a JSON object.
fn read_form(req: &HttpRequest, body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/json") {
        let v: serde_json::Value =
            serde_json::from_slice(body).map_err(|_| ApiError::bad_request("invalid_body"))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad_request("invalid_body"))?;
        return Ok(obj
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()),
                )
            })
            .collect());
    }
    Ok(form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

/// HTTP Basic client authentication (RFC 6749 §2.3.1: both parts form-urlencoded).
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, ApiError> {
    let Some(h) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let Some((scheme, rest)) = h.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let bad = || ApiError::invalid_token("invalid_client");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    // RFC 6749 asks clients to form-encode both parts, but most (curl -u) send them raw and
    // our secrets are base64, where '+' is a literal: decode %XX only, keep '+'.
    let dec = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok(Some((dec(id), dec(secret))))
}
