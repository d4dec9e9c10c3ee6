//! Link-sharing detection for `anti_fraud` links: the first client to use a link owns
//! it (as a network prefix, `fraud.same_client_prefix_v4`/`_v6`) until the link expires;
//! any other client is refused with `link_shared`.
//!
//! The first-use record is the only state. It lives in the catalog (`link_first_use`,
//! so a restart does not hand a used link to a new client) and in a bounded in-memory
//! map in front of it. A record is written once per link, directly (not through the
//! batched audit writer): the first use must be decided before the first byte is sent,
//! and of two first uses at the same moment exactly one may win — SQLite's write lock
//! (`BEGIN IMMEDIATE`, then `INSERT … ON CONFLICT DO NOTHING` and reading back the row)
//! decides. Every later request of the link is answered from memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use ipnet::IpNet;

use crate::catalog::{self, fraud as table, Catalog};
use crate::error::ApiError;

/// The in-memory map starts over (the catalog stays right) past this many links.
const MAX_ENTRIES: usize = 100_000;

/// A link's key: the first 16 bytes of SHA-256 of its token.
pub type LinkKey = [u8; 16];

pub struct FirstUse {
    catalog: Catalog,
    /// link → (first client's network, link expiry in Unix seconds)
    known: Mutex<HashMap<LinkKey, (IpNet, i64)>>,
}

impl FirstUse {
    pub fn new(catalog: &Catalog) -> FirstUse {
        FirstUse {
            catalog: catalog.clone(),
            known: Mutex::default(),
        }
    }

    fn remembered(&self, link: &LinkKey) -> Option<IpNet> {
        let m = self.known.lock().unwrap_or_else(|e| e.into_inner());
        m.get(link).map(|(n, _)| *n)
    }

    fn remember(&self, link: LinkKey, net: IpNet, expires_at: i64, now_secs: i64) {
        let mut m = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_ENTRIES {
            m.retain(|_, (_, exp)| *exp > now_secs);
            if m.len() >= MAX_ENTRIES {
                m.clear();
            }
        }
        m.insert(link, (net, expires_at));
    }

    /// True when `client` may use `link`. With `claim`, a link nobody used yet becomes
    /// `net`'s (the client's network at the configured prefix); without (HEAD requests,
    /// which link previews send), an unused link stays unclaimed.
    pub async fn allows(
        &self,
        link: LinkKey,
        client: IpAddr,
        net: IpNet,
        expires_at: i64,
        now_ms: i64,
        claim: bool,
    ) -> Result<bool, ApiError> {
        if let Some(owner) = self.remembered(&link) {
            return Ok(owner.contains(&client));
        }
        let (net_s, client_s) = (net.to_string(), client.to_string());
        let owner: Option<String> = self
            .catalog
            .call(move |c| {
                if claim {
                    Ok(Some(catalog::write_tx(c, |tx| {
                        table::claim_first_use(tx, &link, &net_s, &client_s, now_ms, expires_at)
                    })?))
                } else {
                    Ok(table::first_use(c, &link)?)
                }
            })
            .await?;
        let Some(owner) = owner else { return Ok(true) };
        let Ok(owner) = owner.parse::<IpNet>() else {
            return Err(ApiError::internal(format!("link_first_use holds {owner:?}")));
        };
        self.remember(link, owner, expires_at, now_ms.div_euclid(1000));
        Ok(owner.contains(&client))
    }

    /// Forgets expired links, in memory and in the catalog.
    pub async fn sweep(&self, now_ms: i64) -> Result<usize, ApiError> {
        let now_secs = now_ms.div_euclid(1000);
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (_, exp)| *exp > now_secs);
        self.catalog
            .call(move |c| Ok(table::sweep_first_use(c, now_secs)?))
            .await
    }
}
