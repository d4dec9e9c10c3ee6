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
    for reserved in ["client_id", "expiry_time", "signature", "multi_use"] {
        if query.split('&').any(|p| p.split('=').next() == Some(reserved)) {
            return Err(StartupError::Other(format!(
                "leave {reserved} out of the URL: `filegate sign` adds it"
            )));
        }
    }
    let Some(key) = signed_url::key_of_secret(&args.client_secret) else {
        return err("the client secret is not base64");
    };
    let expiry = clock.now_secs() + args.expires_in as i64;
    let url = signed_url::sign_url(pq, &args.client_id, &key, expiry, args.single_use);
    println!(
        "{}{url}",
        args.base_url.as_deref().unwrap_or("").trim_end_matches('/')
    );
    Ok(())
}
