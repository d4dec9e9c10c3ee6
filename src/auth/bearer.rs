//! The bearer check: `Authorization: Bearer …` or `access_token=…`, then scopes.
//! A request authorised by a MediaHub signature instead arrives already verified.

use actix_web::http::header;
use actix_web::HttpRequest;

use super::scopes::{Scope, Scopes};
use super::tokens;
use crate::api::params::Params;
use crate::catalog;
use crate::error::ApiError;
use crate::state::AppState;

/// The application a request acts for, and what it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub app_id: String,
    pub scopes: Scopes,
    /// Set when the request was authorised by a MediaHub signed URL: its `expiry_time`,
    /// which also bounds the life of any link it yields.
    pub signed_expiry: Option<i64>,
}

impl Principal {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes.grants(scope) {
            Ok(())
        } else {
            Err(ApiError::insufficient_scope(scope.as_str()))
        }
    }
}

/// The token the request carries, if any: the header wins over the query.
pub(crate) fn presented_token<'a>(req: &'a HttpRequest, params: &'a Params) -> Option<&'a str> {
    if let Some(h) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = h.splitn(2, ' ');
        let scheme = parts.next().unwrap_or("");
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(parts.next().unwrap_or("").trim());
        }
    }
    params.get("access_token")
}

/// The principal of a signed request, else the one of its bearer token; else 403 `0x0000003`.
pub async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
    params: &Params,
) -> Result<Principal, ApiError> {
    // A request authorised by its signature (checked before routing, see `signed`).
    if let Some(p) = super::signed::principal(req) {
        return Ok(p);
    }
    let Some(token) = presented_token(req, params) else {
        return Err(ApiError::invalid_token("missing_token"));
    };
    if token.is_empty() || token.len() > 512 {
        return Err(ApiError::invalid_token("invalid_token"));
    }
    let hash = tokens::hash(token);
    let now_ms = state.clock.now_ms();
    let row = match state.cache.token(&hash, now_ms) {
        Some(row) => row,
        None => {
            let key = hash.clone();
            let row = state
                .catalog
                .call(move |c| Ok(catalog::tokens::lookup(c, &key)?))
                .await?;
            // Unknown tokens are not cached: a client guessing tokens must not fill memory.
            let Some(row) = row else {
                return Err(ApiError::invalid_token("invalid_token"));
            };
            state.cache.put_token(hash, row.clone(), now_ms);
            row
        }
    };
    if row.expires_at <= now_ms {
        return Err(ApiError::invalid_token("token_expired"));
    }
    if !row.app_enabled {
        return Err(ApiError::invalid_token("app_disabled"));
    }
    Ok(Principal {
        app_id: row.app_id,
        scopes: Scopes::parse(&row.scopes).unwrap_or_default(),
        signed_expiry: None,
    })
}
