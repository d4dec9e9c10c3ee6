//! `filegate serve`: open the data directory, bootstrap, bind, serve, sweep.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::auth::apps::{self, NewApp};
use crate::clock::SystemClock;
use crate::config::Config;
use crate::error::StartupError;
use crate::state::AppState;

pub async fn run(config: Config) -> Result<(), StartupError> {
    let state = AppState::open(config, Arc::new(SystemClock))?;
    if let Some(id) = state.keys.unreadable().first() {
        return Err(StartupError::Other(format!(
            "link signing key {id} does not decrypt with {}; restore that file, or retire the key \
             (filegate keys retire {id}) if its links may die",
            crate::auth::secrets::KEY_FILE
        )));
    }
    let recovered = {
        let mut conn = state.catalog.conn()?;
        crate::files::sweep::recover(&mut conn, &state.store, state.clock.now_ms())
            .map_err(|e| StartupError::Store(format!("recovering interrupted writes: {e}")))?
    };
    if recovered != Default::default() {
        tracing::info!(
            temp_files = recovered.temp_files,
            reopened_uploads = recovered.reopened_uploads,
            orphan_chunks = recovered.orphan_chunks,
            orphan_blobs = recovered.orphan_blobs,
            "removed leftovers of interrupted writes"
        );
    }

    let listener = TcpListener::bind(&state.config.server.listen)
        .map_err(|e| StartupError::Other(format!("cannot listen on {}: {e}", state.config.server.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartupError::Other(e.to_string()))?;
    let base = if state.config.server.public_url.is_empty() {
        format!("http://{addr}")
    } else {
        state.config.server.public_url.trim_end_matches('/').to_string()
    };

    let first = {
        let mut conn = state.catalog.conn()?;
        apps::bootstrap(&mut conn, &state.secrets, state.clock.now_ms())?
    };
    if let Some(app) = first {
        print_bootstrap(&app, &base);
    }
    let console_ready = crate::admin::password::is_set(&*state.catalog.conn()?)?;
    if !console_ready {
        println!("Admin console: set a password with `filegate admin set-password`, then open {base}/admin");
    }
    println!("filegate listening on http://{addr}");

    let workers = match state.config.server.workers {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        n => n,
    };
    let sweeper = actix_web::rt::spawn(sweep_loop(state.clone()));
    let key_reloader = actix_web::rt::spawn(key_reload_loop(state.clone()));
    let fraud = actix_web::rt::spawn(crate::fraud::background(state.clone()));
    let app_state = state.clone();
    let server = HttpServer::new(move || App::new().configure(|c| crate::configure(c, app_state.clone())))
        .workers(workers)
        .shutdown_timeout(state.config.server.shutdown_grace)
        .client_request_timeout(Duration::from_secs(state.config.server.request_timeout))
        .keep_alive(Duration::from_secs(state.config.server.keep_alive))
        // actix copies body pieces into a per-connection write buffer and, by default,
        // takes the next piece while less than 32 KiB wait there: a slow reader then held
        // two pieces (~64 KiB). Taking one only while less than 8 KiB wait (a response
        // head always fits, so a small answer still leaves in one write) bounds that to
        // one piece plus 8 KiB (BENCHMARKS.md scenario 5); fast clients are not slowed,
        // the kernel's socket buffer keeps them fed (scenario 3).
        .h1_write_buffer_size(WRITE_BUFFER)
        // Like nginx's `tcp_nodelay on`: the last piece of an answer is not held back
        // waiting for the client's acknowledgement of the previous one.
        .tcp_nodelay(true)
        .disable_signals()
        .listen(listener)
        .map_err(|e| StartupError::Other(e.to_string()))?
        .run();
    // Handlers are installed before READY=1, so a stop right after readiness is graceful.
    let signals = install_signals()?;
    actix_web::rt::spawn(stop_on_signal(signals, server.handle()));
    crate::notify::notify(&format!("READY=1\nSTATUS=listening on {addr}"));
    let result = server.await.map_err(|e| StartupError::Other(e.to_string()));
    sweeper.abort();
    key_reloader.abort();
    fraud.abort();
    // Every response has ended (or was cut at the grace period): write their audit rows.
    state.audit.close();
    tracing::info!("stopped");
    result
}

/// See `h1_write_buffer_size` above.
pub const WRITE_BUFFER: usize = 8 * 1024;

fn install_signals() -> Result<(Signal, Signal), StartupError> {
    let err = |e: std::io::Error| StartupError::Other(format!("cannot install signal handlers: {e}"));
    Ok((
        signal(SignalKind::terminate()).map_err(err)?,
        signal(SignalKind::interrupt()).map_err(err)?,
    ))
}

/// SIGTERM or SIGINT: stop accepting, let running requests finish within
/// `server.shutdown_grace`, then return from `run` (the catalog closes on drop).
async fn stop_on_signal(signals: (Signal, Signal), handle: actix_web::dev::ServerHandle) {
    let (mut term, mut int) = signals;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down: finishing running requests");
    crate::notify::notify("STOPPING=1");
    handle.stop(true).await;
}

fn print_bootstrap(app: &NewApp, base: &str) {
    println!(
        "First start: created the application \"{}\" with every scope.",
        app.name
    );
    println!("  client_id: {}", app.client_id);
    println!("  client_secret: {}", app.client_secret);
    println!("Store the secret now: it is not shown again. Get a token with:");
    println!(
        "  curl -s -u '{}:{}' -d grant_type=client_credentials {base}/v1/oauth2/token",
        app.client_id, app.client_secret
    );
    println!("More applications: filegate app create NAME --scopes mediahub");
}

/// Periodic housekeeping: expired tokens, expired files, abandoned uploads.
async fn sweep_loop(state: AppState) {
    let mut tick = actix_web::rt::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        sweep_once(&state).await;
    }
}

/// One round of the background sweep at the state's clock (public so that tests run
/// exactly what the server runs): expired files and abandoned uploads, then expired
/// tokens and the records of used single-use signatures that have expired.
pub async fn sweep_once(state: &AppState) {
    state.store.close_idle();
    let now = state.clock.now_ms();
    let store = state.store.clone();
    match state
        .catalog
        .call(move |c| crate::files::sweep::run(c, &store, now))
        .await
    {
        Ok(r) if r != Default::default() => tracing::info!(
            expired_files = r.expired_files,
            stale_uploads = r.stale_uploads,
            "swept files and uploads"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "file sweep failed"),
    }
    match state
        .catalog
        .call(move |c| {
            let tokens = crate::catalog::tokens::sweep_expired(c, now)?;
            let signatures = crate::catalog::signatures::sweep(c, now.div_euclid(1000))?;
            Ok(tokens + signatures)
        })
        .await
    {
        Ok(n) if n > 0 => tracing::info!(rows = n, "swept expired tokens and used signatures"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "token sweep failed"),
    }
}

/// Follows `filegate keys rotate|retire` run against the same data directory: a
/// retired key stops verifying within `RELOAD_EVERY_SECS` (see `delivery::keyring`).
async fn key_reload_loop(state: AppState) {
    let every = Duration::from_secs(crate::delivery::keyring::RELOAD_EVERY_SECS);
    let mut tick = actix_web::rt::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = state.keys.reload(state.clock.now_ms()).await {
            tracing::warn!(error = %e, "reloading signing keys failed");
        }
    }
}
