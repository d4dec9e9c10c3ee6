//! Authorising a request by its MediaHub HMAC signature (SPEC §2): the application's
//! secret is the key, its scopes apply, a disabled application's signatures stop at
//! once, and `multi_use=false` URLs work exactly once.

use actix_web::HttpRequest;

use super::apps::{app_scopes, secret_of};
use super::bearer::Principal;
use super::signed_url::{self, SignedUrlError};
use crate::catalog;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Principal, ApiError> {
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
            if !url.multi_use && !catalog::signatures::record_use(c, &url.signature, url.expiry_time)? {
                return Err(ApiError::invalid_token("signature_used"));
            }
            Ok(Principal {
                app_id: app.id.clone(),
                scopes: app_scopes(&app),
                signed_expiry: Some(url.expiry_time),
            })
        })
        .await
}
