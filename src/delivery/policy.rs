//! What a verified link's claims demand of the request before anything is sent:
//! anti-fraud (`blocked_ip`, `anonymizer`, `proxy_detected`, `link_shared`) and
//! `max_parallel_downloads` (429 `too_many_parallel_downloads`).
//!
//! Order: the lists first (stateless), then sharing (which records the first use, so a
//! request refused for another reason never claims a link), then the parallel slots
//! (taken last, so no refusal holds one). `fraud.deny_blocklisted_always` applies the
//! block list to every link.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::http::Method;
use actix_web::HttpRequest;
use sha2::{Digest, Sha256};

use super::slots::{Held, SlotKey};
use crate::error::{ApiError, ErrorKind};
use crate::fraud::client::{self, Client};
use crate::fraud::shared::LinkKey;
use crate::links::LinkClaims;
use crate::state::AppState;

/// The key of a link: the first 16 bytes of SHA-256 of its token (the path segment
/// after `/d/`). A link has one spelling, so one key; the key reveals nothing of the link.
pub fn link_key(path: &str) -> LinkKey {
    let token = path
        .strip_prefix(crate::links::PREFIX)
        .unwrap_or(path)
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    let digest = Sha256::digest(token.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    k
}

/// The client of a request, or `0.0.0.0` (unproxied) when the peer is unknown.
pub fn client_or_unknown(c: Option<Client>) -> Client {
    c.unwrap_or(Client {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        proxied: false,
    })
}

fn forbidden(reason: &'static str) -> ApiError {
    ApiError::new(ErrorKind::Forbidden, reason)
}

/// Applies the link's policy to this request; the slots held while the answer
/// streams (when the link has `max_parallel_downloads`).
pub async fn check(
    state: &AppState,
    req: &HttpRequest,
    claims: &LinkClaims,
    link: LinkKey,
    client: Client,
) -> Result<Option<Held>, ApiError> {
    let cfg = &state.config.fraud;
    if claims.anti_fraud || cfg.deny_blocklisted_always {
        let sets = state.fraud.lists.current();
        if sets.blocklist.contains(client.addr) {
            return Err(forbidden("blocked_ip"));
        }
        if claims.anti_fraud && sets.anonymizers.contains(client.addr) {
            return Err(forbidden("anonymizer"));
        }
    }
    let get = req.method() == Method::GET;
    if claims.anti_fraud {
        if client.proxied {
            return Err(forbidden("proxy_detected"));
        }
        let net = client::same_client_net(client.addr, cfg.same_client_prefix_v4, cfg.same_client_prefix_v6);
        let allowed = state
            .fraud
            .first_use
            .allows(
                link,
                client.addr,
                net,
                claims.expires_at,
                state.clock.now_ms(),
                get,
            )
            .await?;
        if !allowed {
            return Err(forbidden("link_shared"));
        }
    }
    let Some(limit) = claims.max_parallel_downloads.filter(|_| get) else {
        return Ok(None);
    };
    let mut keys = vec![SlotKey::Link(link)];
    if let Some(tag) = &claims.autograph_tag {
        keys.push(SlotKey::Tag(
            claims.app_id.clone().unwrap_or_default(),
            tag.clone(),
        ));
    }
    match state.slots.acquire(keys, limit) {
        Some(held) => Ok(Some(held)),
        None => Err(ApiError::new(
            ErrorKind::TooManyRequests,
            "too_many_parallel_downloads",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_key_depends_on_the_token_only() {
        let a = link_key("/d/AAAA/x.bin");
        assert_eq!(a, link_key("/d/AAAA/other-name.bin"));
        assert_eq!(a, link_key("/d/AAAA"));
        assert_ne!(a, link_key("/d/AAAB/x.bin"));
    }
}
