//! Authorising a request by its MediaHub HMAC signature (SPEC §2): the application's
//! secret is the key, its scopes apply, a disabled application's signatures stop at
//! once, and `multi_use=false` URLs succeed exactly once.
//!
//! The check runs as a middleware over `/v1`, before routing and before any parameter
//! is judged: a tampered signed URL is refused as `invalid_signature` whatever byte
//! changed, never answered with what the server thinks of its parameters. Handlers
//! then find the verified [`Principal`] in the request (see [`principal`]).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpRequest};

use super::apps::{app_scopes, secret_of};
use super::bearer::{presented_token, Principal};
use super::signed_url::{self, SignedUrlError};
use crate::api::params::{Params, SIGNED};
use crate::catalog;
use crate::error::ApiError;
use crate::state::AppState;

/// A request whose signature checked out: who it acts for, and — for a
/// `multi_use=false` URL — the signature to record once the request succeeded.
#[derive(Debug, Clone)]
struct Verified {
    principal: Principal,
    single_use: Option<(Vec<u8>, i64)>,
}

/// True for the requests a signature may authorise: a GET under `/v1/files` whose query
/// names `signature`.
pub fn is_signed_request(req: &HttpRequest) -> bool {
    let path = req.path();
    req.method() == Method::GET
        && (path == "/v1/files" || path.starts_with("/v1/files/"))
        && signed_url::has_signature(req.query_string())
}

/// The principal of a request authorised by its signature (set by [`check`]).
pub fn principal(req: &HttpRequest) -> Option<Principal> {
    req.extensions().get::<Verified>().map(|v| v.principal.clone())
}

/// The signed-URL parameter names a handler accepts for this request: all of them on a
/// request authorised by its signature, none otherwise (with a token they would mean
/// nothing, and a parameter is never silently ignored).
pub fn accepted_params(req: &HttpRequest) -> &'static [&'static str] {
    if req.extensions().contains::<Verified>() {
        SIGNED
    } else {
        &[]
    }
}

/// Middleware: verifies every signed request before it is routed. A token and a
/// signature on one request → 400 `conflicting_credentials` (as S3 refuses a presigned
/// URL that also carries an `Authorization` header). A `multi_use=false` URL is used up
/// by its first successful answer only: of concurrent first uses exactly one succeeds,
/// the others get 403 `signature_used`, and a failed attempt (a 4xx or 5xx) leaves the
/// URL usable.
pub async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if !is_signed_request(req.request()) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.error_response(ApiError::internal("no application state")));
    };
    if presented_token(req.request(), &Params::parse_lenient(req.query_string())).is_some() {
        let e = ApiError::invalid("conflicting_credentials", "signature");
        return Ok(req.error_response(e));
    }
    let verified = match verify(&state, req.request()).await {
        Ok(v) => v,
        Err(e) => return Ok(req.error_response(e)),
    };
    let single_use = verified.single_use.clone();
    req.extensions_mut().insert(verified);
    let res = next.call(req).await?;
    let Some((signature, expires_at)) = single_use else {
        return Ok(res.map_into_boxed_body());
    };
    if res.status().is_client_error() || res.status().is_server_error() {
        return Ok(res.map_into_boxed_body());
    }
    // The primary key decides between concurrent first uses; the losers' answers,
    // already built, are dropped.
    let first = state
        .catalog
        .call(move |c| Ok(catalog::signatures::record_use(c, &signature, expires_at)?))
        .await;
    match first {
        Ok(true) => Ok(res.map_into_boxed_body()),
        Ok(false) => {
            let e = ApiError::invalid_token("signature_used");
            Ok(res.into_response(actix_web::ResponseError::error_response(&e)))
        }
        Err(e) => Ok(res.into_response(actix_web::ResponseError::error_response(&e))),
    }
}

/// Checks the signature of `req` against its application's secret.
async fn verify(state: &AppState, req: &HttpRequest) -> Result<Verified, ApiError> {
    // The signed bytes are the path and query exactly as sent.
    let raw = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("")
        .to_string();
    let now_secs = state.clock.now_secs();
    let st = state.clone();
    state
        .catalog
        .call(move |c| {
            let refuse = |e: SignedUrlError| ApiError::invalid_token(e.reason());
            let url = signed_url::parse(&raw).map_err(refuse)?;
            let Some(app) = catalog::apps::get(c, &url.client_id)? else {
                return Err(refuse(SignedUrlError::BadSignature));
            };
            let key = secret_of(&st.secrets, &app)
                .and_then(|s| String::from_utf8(s).ok())
                .and_then(|s| signed_url::key_of_secret(&s))
                .ok_or_else(|| refuse(SignedUrlError::BadSignature))?;
            signed_url::verify(&url, &key, now_secs).map_err(refuse)?;
            // Only after the MAC holds may the state of the application be revealed.
            if !app.enabled {
                return Err(ApiError::invalid_token("app_disabled"));
            }
            // Refuse a used URL before doing any work; `check` settles races.
            if !url.multi_use && catalog::signatures::is_used(c, &url.signature)? {
                return Err(ApiError::invalid_token("signature_used"));
            }
            Ok(Verified {
                principal: Principal {
                    app_id: app.id.clone(),
                    scopes: app_scopes(&app),
                    signed_expiry: Some(url.expiry_time),
                },
                single_use: (!url.multi_use).then(|| (url.signature.clone(), url.expiry_time)),
            })
        })
        .await
}
