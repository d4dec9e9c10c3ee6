//! Embedded, versioned schema steps; `PRAGMA user_version` records how many have run.
//! A step is never edited after it has landed: add a new one.

use rusqlite::Connection;

const STEPS: &[&str] = &[
    // 1: the appliance skeleton.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE apps (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        secret_enc  BLOB NOT NULL,
        scopes      TEXT NOT NULL,
        enabled     INTEGER NOT NULL DEFAULT 1,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        hash        BLOB PRIMARY KEY,
        app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        scopes      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    );
    CREATE INDEX tokens_expiry ON tokens(expires_at);
    "#,
    // Link signing keys (issue 4). Rows are never deleted, so an id is never reused;
    // secrets are sealed with the data directory's secret.key, bound to their id.
    r#"
    CREATE TABLE signing_keys (
        id          INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 4294967295),
        secret_enc  BLOB NOT NULL,
        state       TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'retired')),
        created_at  INTEGER NOT NULL,
        retired_at  INTEGER,
        CHECK ((state = 'retired') = (retired_at IS NOT NULL))
    );
    "#,
];

pub fn run(conn: &Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in STEPS.iter().enumerate().skip(current as usize) {
        let version = i + 1;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let step = conn
            .execute_batch(sql)
            .and_then(|_| conn.execute_batch(&format!("PRAGMA user_version = {version}")));
        match step {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_run_once_and_record_their_version() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        super::run(&c).unwrap();
        super::run(&c).unwrap();
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v as usize, super::STEPS.len());
    }

    #[test]
    fn signing_keys_table_enforces_its_states() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        super::run(&c).unwrap();
        c.execute_batch("INSERT INTO signing_keys(id, secret_enc, created_at) VALUES (1, x'00', 5)")
            .unwrap();
        for bad in [
            "INSERT INTO signing_keys(id, secret_enc, created_at) VALUES (0, x'00', 5)",
            "INSERT INTO signing_keys(id, secret_enc, created_at) VALUES (4294967296, x'00', 5)",
            "INSERT INTO signing_keys(id, secret_enc, state, created_at) VALUES (2, x'00', 'gone', 5)",
            "INSERT INTO signing_keys(id, secret_enc, state, created_at) VALUES (2, x'00', 'retired', 5)",
            "UPDATE signing_keys SET retired_at = 9 WHERE id = 1",
        ] {
            assert!(c.execute_batch(bad).is_err(), "{bad}");
        }
        c.execute_batch("UPDATE signing_keys SET state = 'retired', retired_at = 9 WHERE id = 1")
            .unwrap();
    }
}
