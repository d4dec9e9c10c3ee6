//! The shared application state handed to every handler.

use std::sync::Arc;

use crate::admin::session::Sessions;
use crate::audit::Audit;
use crate::auth::secrets::SecretBox;
use crate::autograph::{MarkKey, MARK_KEY_LABEL};
use crate::catalog::Catalog;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::delivery::cache::Cache;
use crate::delivery::keyring::LiveKeys;
use crate::delivery::slots::Slots;
use crate::error::StartupError;
use crate::fraud::Fraud;
use crate::metrics::Metrics;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub catalog: Catalog,
    pub store: Store,
    pub secrets: SecretBox,
    /// Link signing keys, reloaded from the catalog while serving.
    pub keys: Arc<LiveKeys>,
    pub clock: SharedClock,
    pub metrics: Arc<Metrics>,
    pub sessions: Arc<Sessions>,
    /// File rows and application states for the delivery hot path.
    pub cache: Arc<Cache>,
    /// Anti-fraud lists (reloaded while serving) and first uses of anti_fraud links.
    pub fraud: Arc<Fraud>,
    /// Responses streaming per link and per tag (`max_parallel_downloads`).
    pub slots: Arc<Slots>,
    /// The download audit trail's batching writer.
    pub audit: Arc<Audit>,
    /// The key AutoGraph marks are authenticated with (derived from `secret.key`).
    pub marks: MarkKey,
}

impl AppState {
    /// Opens the data directory: creates it, the catalog, the store, the key file and
    /// the first link signing key.
    pub fn open(mut config: Config, clock: SharedClock) -> Result<AppState, StartupError> {
        config.prepare();
        let dir = config.data_dir().to_path_buf();
        crate::maintenance::check_not_restoring(&dir).map_err(StartupError::Store)?;
        create_private_dir(&dir).map_err(|e| {
            StartupError::Store(format!("cannot create data directory {}: {e}", dir.display()))
        })?;
        let catalog = Catalog::open(&dir)?;
        let store = Store::open(&dir).map_err(|e| StartupError::Store(format!("{}: {e}", dir.display())))?;
        let secrets = SecretBox::load_or_create(&dir)
            .map_err(|e| StartupError::Store(format!("key file in {}: {e}", dir.display())))?;
        let keys = Arc::new(LiveKeys::open(&catalog, &secrets, clock.now_ms())?);
        let fraud = Arc::new(Fraud::open(&catalog)?);
        let metrics: Arc<Metrics> = Arc::default();
        let audit = Arc::new(Audit::start(
            catalog.clone(),
            metrics.clone(),
            std::time::Duration::from_millis(config.audit.flush_ms),
            config.audit.batch_size as usize,
        ));
        let marks = MarkKey::new(secrets.derive(MARK_KEY_LABEL));
        Ok(AppState {
            config: Arc::new(config),
            catalog,
            store,
            secrets,
            keys,
            clock,
            metrics,
            sessions: Arc::default(),
            cache: Arc::default(),
            fraud,
            slots: Arc::default(),
            audit,
            marks,
        })
    }
}

fn create_private_dir(p: &std::path::Path) -> std::io::Result<()> {
    if p.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o750);
    }
    b.create(p)
}
