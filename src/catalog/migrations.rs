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
    // 2: link signing keys (issue 4). Rows are never deleted, so an id is never reused;
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
    // 3: uploads and the Files resource (blobs are content-addressed and reference counted;
    // pipelines get their API later, uploads only check that one exists).
    r#"
    CREATE TABLE blobs (
        id          TEXT PRIMARY KEY,
        size        INTEGER NOT NULL,
        md5         TEXT NOT NULL,
        refs        INTEGER NOT NULL CHECK (refs >= 0),
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE pipelines (
        id                      TEXT PRIMARY KEY,
        name                    TEXT NOT NULL,
        description             TEXT NOT NULL DEFAULT '',
        mode                    TEXT NOT NULL DEFAULT 'permanent'
                                CHECK (mode IN ('permanent', 'temporary')),
        default_object_timeout  INTEGER NOT NULL DEFAULT 0,
        created_at              INTEGER NOT NULL,
        updated_at              INTEGER NOT NULL
    );
    CREATE TABLE files (
        id              TEXT PRIMARY KEY,
        name            TEXT NOT NULL,
        title           TEXT NOT NULL,
        type            TEXT NOT NULL CHECK (type IN ('file', 'archive')),
        subtype         TEXT,
        mime_type       TEXT NOT NULL,
        size            INTEGER NOT NULL,
        md5             TEXT NOT NULL,
        sha256          TEXT NOT NULL,
        blob_id         TEXT NOT NULL REFERENCES blobs(id),
        autograph       INTEGER NOT NULL DEFAULT 0,
        object_key      TEXT NOT NULL,
        pipeline_id     TEXT REFERENCES pipelines(id),
        job_id          TEXT,
        app_id          TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        expires_at      INTEGER NOT NULL DEFAULT 0,
        revoked_before  INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX files_object_key ON files(ifnull(pipeline_id, ''), object_key);
    CREATE INDEX files_created ON files(created_at, id);
    CREATE INDEX files_blob ON files(blob_id);
    CREATE INDEX files_job ON files(job_id) WHERE job_id IS NOT NULL;
    CREATE INDEX files_expiry ON files(expires_at) WHERE expires_at > 0;
    CREATE TABLE uploads (
        id            TEXT PRIMARY KEY,
        app_id        TEXT,
        token_enc     BLOB NOT NULL,
        status        TEXT NOT NULL
                      CHECK (status IN ('UPLOADING', 'COMPLETING', 'COMPLETED', 'FAILED')),
        failure       TEXT,
        object_key    TEXT,
        pipeline_id   TEXT,
        autograph     INTEGER NOT NULL DEFAULT 0,
        expires_at    INTEGER NOT NULL DEFAULT 0,
        file_id       TEXT NOT NULL,
        nb_chunks     INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL
    );
    CREATE INDEX uploads_updated ON uploads(updated_at);
    CREATE TABLE upload_chunks (
        upload_id   TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        chunks      INTEGER NOT NULL,
        data_id     TEXT NOT NULL,
        name        TEXT,
        size        INTEGER NOT NULL,
        md5         TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (upload_id, idx)
    );
    "#,
    // 4: MediaHub signed URLs used once (multi_use=false), kept until they expire.
    r#"
    CREATE TABLE used_signatures (
        signature   BLOB PRIMARY KEY,
        expires_at  INTEGER NOT NULL
    );
    CREATE INDEX used_signatures_expiry ON used_signatures(expires_at);
    "#,
    // 5: jobs (issue 6). A job owns the object keys under its expanded `output_prefix` in
    // its pipeline; `input_file_name` is a snapshot (the input may be deleted later) and
    // `input_name_fold` its lowercase form for case-insensitive search (SQLite's lower()
    // only knows ASCII).
    r#"
    CREATE TABLE jobs (
        id                    TEXT PRIMARY KEY,
        pipeline_id           TEXT NOT NULL REFERENCES pipelines(id),
        status                TEXT NOT NULL
                              CHECK (status IN ('QUEUED', 'RUNNING', 'SUCCESS', 'FAILED')),
        percentage_completed  INTEGER NOT NULL DEFAULT 0
                              CHECK (percentage_completed BETWEEN 0 AND 100),
        input_name            TEXT,
        input_file_id         TEXT,
        input_file_name       TEXT,
        input_name_fold       TEXT,
        output_prefix         TEXT NOT NULL CHECK (length(output_prefix) > 0),
        user_data             TEXT,
        app_id                TEXT,
        created_at            INTEGER NOT NULL,
        updated_at            INTEGER NOT NULL,
        started_at            INTEGER,
        finished_at           INTEGER
    );
    CREATE INDEX jobs_prefix ON jobs(pipeline_id, output_prefix);
    CREATE INDEX jobs_created ON jobs(created_at, id);
    CREATE INDEX jobs_updated ON jobs(updated_at, id);
    CREATE TABLE job_outputs (
        job_id       TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        idx          INTEGER NOT NULL,
        output_name  TEXT NOT NULL,
        PRIMARY KEY (job_id, idx),
        UNIQUE (job_id, output_name)
    );
    "#,
    // 6: files whose bytes `filegate verify --repair` found missing or damaged (ms since
    // the epoch when it did; 0 = intact). The row stays, so the API can say so.
    r#"
    ALTER TABLE files ADD COLUMN missing_since INTEGER NOT NULL DEFAULT 0;
    "#,
    // 7: archive entries (issue 7), written with their file's row and gone with it.
    // `path` is the name as stored (bytes), `name` the cleaned display name that the API
    // shows and links carry; `data_offset` is where the entry's bytes (stored), its
    // deflate stream (deflated) or its place in the decompressed stream (gzip) start.
    r#"
    CREATE TABLE archive_entries (
        file_id          TEXT NOT NULL REFERENCES files(id) ON DELETE CASCADE,
        idx              INTEGER NOT NULL CHECK (idx >= 0),
        path             BLOB NOT NULL,
        name             TEXT NOT NULL,
        size             INTEGER NOT NULL CHECK (size >= 0),
        compressed_size  INTEGER NOT NULL CHECK (compressed_size >= 0),
        method           TEXT NOT NULL CHECK (method IN ('stored', 'deflated', 'gzip')),
        data_offset      INTEGER NOT NULL CHECK (data_offset >= 0),
        crc32            INTEGER NOT NULL CHECK (crc32 BETWEEN 0 AND 4294967295),
        mime_type        TEXT NOT NULL,
        PRIMARY KEY (file_id, idx)
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX archive_entries_name ON archive_entries(file_id, name);
    "#,
    // 8: anti-fraud (issue 8): CIDR lists by source, first use of anti_fraud links, and
    // the download audit trail (one row per link × client × outcome, one per request).
    r#"
    CREATE TABLE fraud_sources (
        list         TEXT NOT NULL CHECK (list IN ('blocklist', 'anonymizers')),
        source       TEXT NOT NULL,
        entries      INTEGER NOT NULL,
        imported_at  INTEGER NOT NULL,
        PRIMARY KEY (list, source)
    );
    CREATE TABLE fraud_ranges (
        list    TEXT NOT NULL,
        source  TEXT NOT NULL,
        cidr    TEXT NOT NULL,
        first   BLOB NOT NULL CHECK (length(first) = 16),
        last    BLOB NOT NULL CHECK (length(last) = 16),
        FOREIGN KEY (list, source) REFERENCES fraud_sources(list, source) ON DELETE CASCADE
    );
    CREATE INDEX fraud_ranges_source ON fraud_ranges(list, source);
    CREATE TABLE link_first_use (
        link        BLOB PRIMARY KEY,
        client_net  TEXT NOT NULL,
        client      TEXT NOT NULL,
        first_at    INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    );
    CREATE INDEX link_first_use_expiry ON link_first_use(expires_at);
    CREATE TABLE downloads (
        id               INTEGER PRIMARY KEY,
        link             BLOB NOT NULL,
        client           TEXT NOT NULL,
        outcome          TEXT NOT NULL DEFAULT '',
        file_id          TEXT,
        app_id           TEXT,
        tag              TEXT,
        item             TEXT,
        link_expires_at  INTEGER,
        anti_fraud       INTEGER NOT NULL DEFAULT 0,
        first_at         INTEGER NOT NULL,
        last_at          INTEGER NOT NULL,
        requests         INTEGER NOT NULL,
        bytes            INTEGER NOT NULL,
        status           INTEGER NOT NULL,
        UNIQUE (link, client, outcome)
    );
    CREATE INDEX downloads_last ON downloads(last_at);
    CREATE INDEX downloads_file ON downloads(file_id, last_at);
    CREATE INDEX downloads_tag ON downloads(tag) WHERE tag IS NOT NULL;
    CREATE INDEX downloads_outcome ON downloads(outcome, last_at) WHERE outcome != '';
    CREATE TABLE download_requests (
        id           INTEGER PRIMARY KEY,
        download_id  INTEGER NOT NULL REFERENCES downloads(id) ON DELETE CASCADE,
        at           INTEGER NOT NULL,
        method       TEXT NOT NULL,
        status       INTEGER NOT NULL,
        range        TEXT,
        bytes        INTEGER NOT NULL,
        completed    INTEGER NOT NULL,
        ms           INTEGER NOT NULL
    );
    CREATE INDEX download_requests_download ON download_requests(download_id);
    CREATE INDEX download_requests_at ON download_requests(at);
    "#,
    // 9: AutoGraph (issue 9): one row per tagged link, written when it is issued and keyed
    // by the mark id its copies carry (the link's key, as in `downloads.link`); kept when
    // the file goes, since a leaked copy outlives it. Backtraces and the marks they found.
    r#"
    CREATE TABLE autograph_links (
        mark_id     BLOB PRIMARY KEY CHECK (length(mark_id) = 16),
        file_id     TEXT NOT NULL,
        tag         TEXT NOT NULL,
        app_id      TEXT,
        issued_at   INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX autograph_links_file ON autograph_links(file_id, issued_at);
    CREATE INDEX autograph_links_tag ON autograph_links(tag);
    CREATE TABLE backtraces (
        id          TEXT PRIMARY KEY,
        app_id      TEXT,
        created_at  INTEGER NOT NULL,
        name        TEXT,
        size        INTEGER NOT NULL,
        sha256      TEXT NOT NULL,
        result      TEXT NOT NULL CHECK (result IN ('found', 'no_mark', 'forged_mark'))
    );
    CREATE INDEX backtraces_created ON backtraces(created_at);
    CREATE TABLE backtrace_marks (
        backtrace_id  TEXT NOT NULL REFERENCES backtraces(id) ON DELETE CASCADE,
        idx           INTEGER NOT NULL,
        mark_id       BLOB NOT NULL,
        file_id       TEXT NOT NULL,
        tag           TEXT NOT NULL,
        authentic     INTEGER NOT NULL,
        PRIMARY KEY (backtrace_id, idx)
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this build writes: a catalog with a higher `user_version` comes
/// from a newer filegate.
pub const LATEST: usize = STEPS.len();

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
