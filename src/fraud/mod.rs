//! Who the client is, and whether to serve it: client address resolution behind
//! trusted proxies, the CIDR lists (`blocklist`, `anonymizers`), and link-sharing
//! detection for `anti_fraud` links. The policy that applies them to a link is in
//! `delivery::policy`.

pub mod client;
pub mod lists;
pub mod ranges;
pub mod shared;

use std::time::Duration;

use crate::catalog::Catalog;
use crate::error::StartupError;
use crate::state::AppState;

/// The anti-fraud state of a process.
pub struct Fraud {
    pub lists: lists::LiveLists,
    pub first_use: shared::FirstUse,
}

impl Fraud {
    pub fn open(catalog: &Catalog) -> Result<Fraud, StartupError> {
        Ok(Fraud {
            lists: lists::LiveLists::open(catalog)?,
            first_use: shared::FirstUse::new(catalog),
        })
    }
}

/// For `filegate serve`: follows list changes made by other processes (every
/// `RELOAD_EVERY_SECS`), and once a minute forgets the first uses of expired links and
/// audit rows past `audit.retention_days`.
pub async fn background(state: AppState) {
    let mut tick = actix_web::rt::time::interval(Duration::from_secs(lists::RELOAD_EVERY_SECS));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        if let Err(e) = state.fraud.lists.reload_if_changed().await {
            tracing::warn!(error = %e, "reloading the anti-fraud lists failed");
        }
        n += 1;
        if n % 6 != 1 {
            continue;
        }
        let now = state.clock.now_ms();
        match state.fraud.first_use.sweep(now).await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "forgot first uses of expired links"),
            Err(e) => tracing::warn!(error = %e, "first-use sweep failed"),
        }
        let days = state.config.audit.retention_days;
        if days > 0 {
            let before = now.saturating_sub((days as i64).saturating_mul(86_400_000));
            match state
                .catalog
                .call(move |c| Ok(crate::catalog::audit::sweep(c, before)?))
                .await
            {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "forgot audit rows past audit.retention_days"),
                Err(e) => tracing::warn!(error = %e, "audit sweep failed"),
            }
        }
    }
}
