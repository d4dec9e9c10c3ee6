//! `filegate sign`: make a MediaHub HMAC-signed URL without writing code.

use crate::auth::signed_url;
use crate::cli::SignArgs;
use crate::clock::Clock;
use crate::error::StartupError;

pub fn run(args: SignArgs, clock: &dyn Clock) -> Result<(), StartupError> {
    let err = |m: &str| Err(StartupError::Other(m.to_string()));
    let pq = args.path_and_query.trim();
    if !pq.starts_with('/') {
        return err(
            "the URL to sign is a path and query starting with '/', e.g. /v1/files/downloads/?file_id=…",
        );
    }
    let query = pq.split_once('?').map(|(_, q)| q).unwrap_or("");
    let names = || query.split('&').map(|p| p.split('=').next().unwrap_or(""));
    for reserved in ["client_id", "expiry_time", "signature", "multi_use"] {
        if names().any(|n| n == reserved) {
            return Err(StartupError::Other(format!(
                "leave {reserved} out of the URL: `filegate sign` adds it"
            )));
        }
    }
    if names().any(|n| n == "access_token") {
        return err("leave access_token out of the URL: the signature replaces the token");
    }
    let Some(key) = signed_url::key_of_secret(&args.client_secret) else {
        return err("the client secret is not base64");
    };
    // `expiry_time` has at most 12 digits (see `signed_url::parse`).
    let expiry = i64::try_from(args.expires_in)
        .ok()
        .and_then(|s| clock.now_secs().checked_add(s))
        .filter(|e| *e <= 999_999_999_999);
    let Some(expiry) = expiry else {
        return err("--expires-in is too large");
    };
    let url = signed_url::sign_url(pq, &args.client_id, &key, expiry, args.single_use);
    println!(
        "{}{url}",
        args.base_url.as_deref().unwrap_or("").trim_end_matches('/')
    );
    Ok(())
}
