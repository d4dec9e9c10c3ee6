//! The SQLite catalog: connection pool, per-connection pragmas, migrations.
//! Submodules hold the queries of one table family each; none of them knows HTTP.

pub mod apps;
pub mod archives;
pub mod audit;
pub mod files;
pub mod fraud;
pub mod jobs;
pub mod keys;
pub mod maintenance;
pub mod meta;
mod migrations;
pub mod pipelines;
pub mod signatures;
pub mod tokens;
pub mod uploads;

use std::path::Path;
use std::time::Duration;

use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::error::{ApiError, StartupError};

pub type Conn = PooledConnection<SqliteConnectionManager>;

#[derive(Clone)]
pub struct Catalog {
    pool: Pool<SqliteConnectionManager>,
}

pub const CATALOG_FILE: &str = "catalog.sqlite3";

/// The schema version this build migrates catalogs to.
pub const SCHEMA_VERSION: usize = migrations::LATEST;

impl Catalog {
    /// Opens (creating if needed) the catalog in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Catalog, StartupError> {
        let path = data_dir.join(CATALOG_FILE);
        {
            // WAL is a property of the file; set it once on a plain connection, since doing
            // it in every pooled connection's init races ("database is locked").
            let conn = Connection::open(&path)?;
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", "ON")?;
            migrations::run(&conn)?;
        }
        let manager = SqliteConnectionManager::file(&path).with_init(|c| {
            c.busy_timeout(Duration::from_secs(10))?;
            // A 201 must survive power loss: FULL syncs the WAL on every commit.
            c.pragma_update(None, "synchronous", "FULL")?;
            c.pragma_update(None, "foreign_keys", "ON")?;
            Ok(())
        });
        let pool = Pool::builder()
            .max_size(16)
            .connection_timeout(Duration::from_secs(30))
            .build(manager)?;
        Ok(Catalog { pool })
    }

    /// A connection for blocking code (CLI commands, code already off the async workers).
    pub fn conn(&self) -> Result<Conn, r2d2::Error> {
        self.pool.get()
    }

    /// Runs `f` with a connection on the blocking pool, off the async workers.
    pub async fn call<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await?
    }
}

/// Runs `f` inside `BEGIN IMMEDIATE … COMMIT`, so writers queue on the busy timeout
/// instead of failing half-way with SQLITE_BUSY on lock upgrade.
pub fn write_tx<T, E>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<rusqlite::Error>,
{
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}
