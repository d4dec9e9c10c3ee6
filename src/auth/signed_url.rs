//! MediaHub HMAC-signed request URLs (SPEC §2): an application owner signs an API URL
//! with its client secret and hands it to a third party. Pure: no I/O, no clock.
//!
//! The signed bytes are the request's raw path and query exactly as sent (no
//! re-encoding, no re-ordering), ending just before `&signature=`. The signature is the
//! lowercase hex HMAC-SHA256 of those bytes under `base64-decode(client_secret)`, and
//! must be the last parameter. `client_id` and `expiry_time` (Unix seconds) are required.

use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::ids;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The parts of a request URL that carries `signature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl<'a> {
    /// What the signature covers: path and query up to (not including) `&signature=`.
    pub signed: &'a str,
    pub client_id: String,
    pub expiry_time: i64,
    pub signature: Vec<u8>,
    /// `multi_use=false` makes the URL work once (default true).
    pub multi_use: bool,
}

/// Why a signed URL was refused; every case is a 403 for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedUrlError {
    /// Malformed: `signature` not last or repeated, not 64 lowercase hex, missing
    /// `client_id`/`expiry_time`, or a bad `expiry_time`/`multi_use`.
    Malformed,
    BadSignature,
    Expired,
}

impl SignedUrlError {
    pub fn reason(self) -> &'static str {
        match self {
            SignedUrlError::Malformed | SignedUrlError::BadSignature => "invalid_signature",
            SignedUrlError::Expired => "signature_expired",
        }
    }
}

/// True when the query names a `signature` parameter at all.
pub fn has_signature(query: &str) -> bool {
    query
        .split('&')
        .any(|p| p == "signature" || p.starts_with("signature="))
}

/// Splits `path_and_query` (as sent) into what is signed and the signature.
pub fn parse(path_and_query: &str) -> Result<SignedUrl<'_>, SignedUrlError> {
    use SignedUrlError::Malformed;
    let (signed, sig_hex) = path_and_query.rsplit_once("&signature=").ok_or(Malformed)?;
    let (_, query) = signed.split_once('?').ok_or(Malformed)?;
    if sig_hex.len() != 64 || has_signature(query) {
        return Err(Malformed);
    }
    let signature = ids::unhex(sig_hex).ok_or(Malformed)?;
    let mut client_id = None;
    let mut expiry_time = None;
    let mut multi_use = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "client_id" => &mut client_id,
            "expiry_time" => &mut expiry_time,
            "multi_use" => &mut multi_use,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(Malformed);
        }
    }
    let client_id = client_id.filter(|c| ids::is_id(c)).ok_or(Malformed)?;
    let expiry_time = expiry_time
        .filter(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) && e.len() <= 12)
        .and_then(|e| e.parse::<i64>().ok())
        .ok_or(Malformed)?;
    let multi_use = match multi_use.as_deref() {
        None | Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(_) => return Err(Malformed),
    };
    Ok(SignedUrl {
        signed,
        client_id,
        expiry_time,
        signature,
        multi_use,
    })
}

/// The HMAC key of a client secret: its base64 decoding (MediaHub's rule).
pub fn key_of_secret(client_secret: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(client_secret.trim())
        .ok()
}

/// Lowercase hex HMAC-SHA256 of `signed` under `key`.
pub fn sign(signed: &str, key: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(signed.as_bytes());
    ids::hex(&mac.finalize().into_bytes())
}

/// Checks the MAC (constant time), then the expiry against `now_secs`.
pub fn verify(url: &SignedUrl<'_>, key: &[u8], now_secs: i64) -> Result<(), SignedUrlError> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(url.signed.as_bytes());
    mac.verify_slice(&url.signature)
        .map_err(|_| SignedUrlError::BadSignature)?;
    if now_secs >= url.expiry_time {
        return Err(SignedUrlError::Expired);
    }
    Ok(())
}

/// Appends `multi_use`, `client_id`, `expiry_time` and the signature to an API path
/// and query, the way owners' scripts do (`filegate sign`).
pub fn sign_url(
    path_and_query: &str,
    client_id: &str,
    key: &[u8],
    expiry_time: i64,
    single_use: bool,
) -> String {
    let sep = match path_and_query.rfind('?') {
        None => "?",
        // `/path?` or `/path?a=1&`: the separator is already there.
        Some(i) if i + 1 == path_and_query.len() || path_and_query.ends_with('&') => "",
        Some(_) => "&",
    };
    let mut signed = format!("{path_and_query}{sep}");
    if single_use {
        signed.push_str("multi_use=false&");
    }
    signed.push_str(&format!("client_id={client_id}&expiry_time={expiry_time}"));
    let sig = sign(&signed, key);
    format!("{signed}&signature={sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "54820cec18bac397e161aebc";

    #[test]
    fn sign_then_parse_and_verify_round_trips() {
        let key = b"0123456789abcdef0123456789abcdef";
        let url = sign_url(
            "/v1/files/downloads/?file_id=F&redirect=true",
            ID,
            key,
            2000,
            true,
        );
        assert!(url.starts_with("/v1/files/downloads/?file_id=F&redirect=true&multi_use=false&client_id="));
        let p = parse(&url).unwrap();
        assert_eq!(
            (p.client_id.as_str(), p.expiry_time, p.multi_use),
            (ID, 2000, false)
        );
        assert_eq!(verify(&p, key, 1999), Ok(()));
        assert_eq!(verify(&p, key, 2000), Err(SignedUrlError::Expired));
        assert_eq!(verify(&p, b"other key", 1999), Err(SignedUrlError::BadSignature));
    }

    #[test]
    fn sign_url_adds_exactly_one_separator() {
        let key = b"k";
        for (given, head) in [
            ("/v1/files/", "/v1/files/?client_id="),
            ("/v1/files/?", "/v1/files/?client_id="),
            ("/v1/files/?limit=5", "/v1/files/?limit=5&client_id="),
            ("/v1/files/?limit=5&", "/v1/files/?limit=5&client_id="),
        ] {
            let url = sign_url(given, ID, key, 2000, false);
            assert!(url.starts_with(head), "{given} gave {url}");
            let p = parse(&url).unwrap();
            assert_eq!(verify(&p, key, 1999), Ok(()));
        }
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let key = b"k";
        let url = sign_url("/v1/files/downloads/?file_id=abc", ID, key, 2000, false);
        for i in 0..url.len() {
            let mut b = url.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let Ok(s) = String::from_utf8(b) else { continue };
            if s == url {
                continue;
            }
            let ok = parse(&s).map(|p| verify(&p, key, 1000).is_ok()).unwrap_or(false);
            assert!(!ok, "byte {i} changed and still accepted: {s}");
        }
    }

    #[test]
    fn signature_must_be_last_once_and_lowercase_hex_and_ids_required() {
        let key = b"k";
        let url = sign_url("/v1/files/?file_id=abc", ID, key, 2000, false);
        let (head, sig) = url.rsplit_once("&signature=").unwrap();
        assert_eq!(
            parse(&format!("{url}&x=1")).unwrap_err(),
            SignedUrlError::Malformed
        );
        assert_eq!(
            parse(&format!("{head}&signature={}", sig.to_uppercase())).unwrap_err(),
            SignedUrlError::Malformed
        );
        assert_eq!(
            parse(&format!("{head}&signature={sig}&signature={sig}")).unwrap_err(),
            SignedUrlError::Malformed
        );
        let no_client = format!("/v1/files/?expiry_time=5&signature={sig}");
        assert!(parse(&no_client).is_err());
        let no_expiry = format!("/v1/files/?client_id={ID}&signature={sig}");
        assert!(parse(&no_expiry).is_err());
    }

    #[test]
    fn matches_an_independent_vector() {
        // python3 -c "import hmac,hashlib,base64;print(hmac.new(base64.b64decode('c2VjcmV0'),
        //   b'/v1/files/downloads/?file_id=54820cec18bac397e161aebc&client_id=54820cec18bac397e161aebc&expiry_time=1767225600',
        //   hashlib.sha256).hexdigest())"
        let key = key_of_secret("c2VjcmV0").unwrap();
        let signed = format!("/v1/files/downloads/?file_id={ID}&client_id={ID}&expiry_time=1767225600");
        assert_eq!(
            sign(&signed, &key),
            "0294d498f5064aed33552e196cee180d8066ff70bc0b74cafb4e5eb855c5a5d3"
        );
    }
}
