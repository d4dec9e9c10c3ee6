//! The SQLite catalog: connection pool, per-connection pragmas, migrations.
//! Submodules hold the queries of one table family each; none of them knows HTTP.

pub mod apps;
pub mod archives;
pub mod audit;
pub mod autograph;
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

/// The sort and window of a list query.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// Column to order by (the id breaks ties, in the same direction).
    pub column: &'a str,
    pub ascending: bool,
    pub start: u64,
    pub limit: u64,
}

/// A list endpoint's query: the total of rows of `table` matching `filter` (a WHERE
/// condition over the `named` parameters), and the page of them that `w` selects.
pub fn page<T>(
    conn: &Connection,
    table: &str,
    cols: &str,
    filter: &str,
    named: &[(&str, &dyn rusqlite::ToSql)],
    w: Window,
    row: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> rusqlite::Result<(Vec<T>, u64)> {
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM {table} WHERE {filter}"),
        named,
        |r| r.get(0),
    )?;
    let dir = if w.ascending { "ASC" } else { "DESC" };
    let limit = i64::try_from(w.limit).unwrap_or(i64::MAX);
    let start = i64::try_from(w.start).unwrap_or(i64::MAX);
    let mut all: Vec<(&str, &dyn rusqlite::ToSql)> = named.to_vec();
    all.push((":limit", &limit));
    all.push((":start", &start));
    let sql = format!(
        "SELECT {cols} FROM {table} WHERE {filter} ORDER BY {col} {dir}, id {dir} LIMIT :limit OFFSET :start",
        col = w.column
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map(all.as_slice(), row)?;
    Ok((
        rows.collect::<rusqlite::Result<_>>()?,
        u64::try_from(total).unwrap_or(0),
    ))
}
