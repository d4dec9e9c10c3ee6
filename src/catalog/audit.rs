//! The download audit trail: `downloads` (one row per link × client × outcome, so the
//! many Range requests of one client count as one download) and `download_requests`
//! (one row per request). Written in batches by `crate::audit`.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

/// One answered request of a link, delivered or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// When the request arrived, ms since the epoch.
    pub at: i64,
    /// Hash of the link's token (16 bytes); for a link that did not verify, of the
    /// token as sent.
    pub link: Vec<u8>,
    /// The client address (see `fraud::client`).
    pub client: String,
    /// The refusal's reason, or empty for a delivery.
    pub outcome: String,
    pub file_id: Option<String>,
    pub app_id: Option<String>,
    pub tag: Option<String>,
    pub item: Option<String>,
    /// The link's expiry, Unix seconds.
    pub link_expires_at: Option<i64>,
    pub anti_fraud: bool,
    pub method: String,
    pub status: u16,
    /// The `Range` header as sent (cut to 200 bytes).
    pub range: Option<String>,
    /// Body bytes handed to the connection.
    pub bytes: u64,
    /// The body was sent to its end (false: the client went away first).
    pub completed: bool,
    /// From the request's arrival to the end (or drop) of its body.
    pub ms: u64,
}

/// Writes a batch (call inside one write transaction); answers how many of the rows
/// started a new download (a delivery to a link × client pair not seen before).
pub fn insert_batch(conn: &Connection, batch: &[NewRequest]) -> rusqlite::Result<usize> {
    let mut upsert = conn.prepare_cached(
        "INSERT INTO downloads(link, client, outcome, file_id, app_id, tag, item, link_expires_at,
                               anti_fraud, first_at, last_at, requests, bytes, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT(link, client, outcome) DO UPDATE SET
             requests = requests + excluded.requests,
             bytes = bytes + excluded.bytes,
             first_at = min(first_at, excluded.first_at),
             last_at = max(last_at, excluded.last_at),
             status = excluded.status
         RETURNING id, requests",
    )?;
    let mut request = conn.prepare_cached(
        "INSERT INTO download_requests(download_id, at, method, status, range, bytes, completed, ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    // Full runs of requests go in `REQUESTS_PER_INSERT` rows per statement: one
    // statement's overhead per row was most of the writer's time under load.
    let mut requests = conn.prepare_cached(&many_requests_sql())?;
    let mut pending: Vec<(i64, &NewRequest)> = Vec::with_capacity(batch.len());
    // The requests of one download (a client fetching a link, in many Range requests,
    // or a benchmark hammering one link) are folded into one upsert per batch: the
    // per-request rows still go in one by one.
    let mut groups: Vec<(&NewRequest, Vec<&NewRequest>)> = Vec::new();
    let mut index: std::collections::HashMap<(&[u8], &str, &str), usize> = Default::default();
    for r in batch {
        let key = (r.link.as_slice(), r.client.as_str(), r.outcome.as_str());
        match index.get(&key) {
            Some(&i) => groups[i].1.push(r),
            None => {
                index.insert(key, groups.len());
                groups.push((r, vec![r]));
            }
        }
    }
    let mut new = 0;
    for (first, rows) in groups {
        let last = rows[rows.len() - 1];
        let first_at = rows.iter().map(|r| r.at).min().unwrap_or(first.at);
        let last_at = rows.iter().map(|r| r.at).max().unwrap_or(first.at);
        let bytes: u64 = rows.iter().map(|r| r.bytes).sum();
        let (id, requests): (i64, i64) = upsert.query_row(
            params![
                first.link,
                first.client,
                first.outcome,
                first.file_id,
                first.app_id,
                first.tag,
                first.item,
                first.link_expires_at,
                first.anti_fraud,
                first_at,
                last_at,
                rows.len() as i64,
                bytes as i64,
                last.status
            ],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        if requests == rows.len() as i64 && first.outcome.is_empty() {
            new += 1;
        }
        pending.extend(rows.into_iter().map(|r| (id, r)));
    }
    let mut chunks = pending.chunks_exact(REQUESTS_PER_INSERT);
    for chunk in &mut chunks {
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 8);
        for &(id, r) in chunk {
            values.extend(request_values(id, r));
        }
        requests.execute(params_from_iter(values))?;
    }
    for &(id, r) in chunks.remainder() {
        request.execute(params_from_iter(request_values(id, r)))?;
    }
    Ok(new)
}

/// Rows of `download_requests` written by one statement when a batch has that many.
const REQUESTS_PER_INSERT: usize = 32;

fn many_requests_sql() -> String {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?)";
    format!(
        "INSERT INTO download_requests(download_id, at, method, status, range, bytes, completed, ms) VALUES {}",
        vec![row; REQUESTS_PER_INSERT].join(", ")
    )
}

/// The eight values of a `download_requests` row, in the order of its INSERTs.
fn request_values(download_id: i64, r: &NewRequest) -> [Value; 8] {
    [
        Value::Integer(download_id),
        Value::Integer(r.at),
        Value::Text(r.method.clone()),
        Value::Integer(i64::from(r.status)),
        r.range.clone().map_or(Value::Null, Value::Text),
        Value::Integer(r.bytes.min(i64::MAX as u64) as i64),
        Value::Integer(i64::from(r.completed)),
        Value::Integer(r.ms.min(i64::MAX as u64) as i64),
    ]
}

/// Which rows a listing wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub file_id: Option<String>,
    pub app_id: Option<String>,
    pub tag: Option<String>,
    pub client: Option<String>,
    /// A refusal reason, or `Some("")` for deliveries only.
    pub outcome: Option<String>,
    /// `Some(true)`: refusals only; `Some(false)`: deliveries only.
    pub refused: Option<bool>,
    /// Downloads active at or after this time (ms): `last_at >= from`.
    pub from: Option<i64>,
    /// Downloads that began before this time (ms): `first_at < to`.
    pub to: Option<i64>,
    pub start: u64,
    pub limit: u64,
    /// Oldest first (default: the most recent activity first).
    pub ascending: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRow {
    pub id: i64,
    pub link: Vec<u8>,
    pub client: String,
    /// Empty for deliveries, else the refusal's reason.
    pub outcome: String,
    pub file_id: Option<String>,
    pub app_id: Option<String>,
    pub tag: Option<String>,
    pub item: Option<String>,
    pub link_expires_at: Option<i64>,
    pub anti_fraud: bool,
    pub first_at: i64,
    pub last_at: i64,
    pub requests: i64,
    pub bytes: i64,
    pub status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub at: i64,
    pub method: String,
    pub status: u16,
    pub range: Option<String>,
    pub bytes: i64,
    pub completed: bool,
    pub ms: i64,
}

const COLS: &str = "id, link, client, outcome, file_id, app_id, tag, item, link_expires_at, anti_fraud,
                    first_at, last_at, requests, bytes, status";

fn from_row(r: &Row) -> rusqlite::Result<DownloadRow> {
    Ok(DownloadRow {
        id: r.get(0)?,
        link: r.get(1)?,
        client: r.get(2)?,
        outcome: r.get(3)?,
        file_id: r.get(4)?,
        app_id: r.get(5)?,
        tag: r.get(6)?,
        item: r.get(7)?,
        link_expires_at: r.get(8)?,
        anti_fraud: r.get(9)?,
        first_at: r.get(10)?,
        last_at: r.get(11)?,
        requests: r.get(12)?,
        bytes: r.get(13)?,
        status: r.get(14)?,
    })
}

/// One page of downloads and the total that match.
pub fn list(conn: &Connection, q: &Query) -> rusqlite::Result<(Vec<DownloadRow>, u64)> {
    let mut cond: Vec<&str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let mut eq = |col: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            cond.push(col);
            args.push(Value::Text(v.clone()));
        }
    };
    eq("file_id = ?", &q.file_id);
    eq("app_id = ?", &q.app_id);
    eq("tag = ?", &q.tag);
    eq("client = ?", &q.client);
    eq("outcome = ?", &q.outcome);
    match q.refused {
        Some(true) => cond.push("outcome != ''"),
        Some(false) => cond.push("outcome = ''"),
        None => {}
    }
    if let Some(f) = q.from {
        cond.push("last_at >= ?");
        args.push(Value::Integer(f));
    }
    if let Some(t) = q.to {
        cond.push("first_at < ?");
        args.push(Value::Integer(t));
    }
    let filter = if cond.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", cond.join(" AND "))
    };
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM downloads {filter}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let dir = if q.ascending { "ASC" } else { "DESC" };
    args.push(Value::Integer(q.limit.min(i64::MAX as u64) as i64));
    args.push(Value::Integer(q.start.min(i64::MAX as u64) as i64));
    let mut st = conn.prepare(&format!(
        "SELECT {COLS} FROM downloads {filter} ORDER BY last_at {dir}, id {dir} LIMIT ? OFFSET ?"
    ))?;
    let rows = st
        .query_map(params_from_iter(args.iter()), from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total as u64))
}

/// Since `since_ms`: how many deliveries began (one per link × client), and the refused
/// requests counted by reason, most frequent first (the console's dashboard).
pub fn summary_since(conn: &Connection, since_ms: i64) -> rusqlite::Result<(u64, Vec<(String, u64)>)> {
    let delivered: i64 = conn.query_row(
        "SELECT count(*) FROM downloads WHERE outcome = '' AND first_at >= ?1",
        [since_ms],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare(
        "SELECT d.outcome, count(*) AS n FROM download_requests r JOIN downloads d ON d.id = r.download_id
         WHERE d.outcome != '' AND r.at >= ?1 GROUP BY d.outcome ORDER BY n DESC, d.outcome",
    )?;
    let refusals = st
        .query_map([since_ms], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((delivered.max(0) as u64, refusals))
}

/// Every entry of one link (deliveries and refusals, by client), oldest first; at most
/// `limit`. For AutoGraph, the link's key is the mark id its copies carry.
pub fn by_link(conn: &Connection, link: &[u8], limit: u64) -> rusqlite::Result<Vec<DownloadRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLS} FROM downloads WHERE link = ?1 ORDER BY first_at, id LIMIT ?2"
    ))?;
    let rows = st
        .query_map(params![link, limit.min(i64::MAX as u64) as i64], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A download and its requests, oldest first (at most `max_requests` of them).
pub fn get(
    conn: &Connection,
    id: i64,
    max_requests: u64,
) -> rusqlite::Result<Option<(DownloadRow, Vec<RequestRow>)>> {
    let Some(d) = conn
        .query_row(
            &format!("SELECT {COLS} FROM downloads WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?
    else {
        return Ok(None);
    };
    let mut st = conn.prepare(
        "SELECT at, method, status, range, bytes, completed, ms FROM download_requests
         WHERE download_id = ?1 ORDER BY at, id LIMIT ?2",
    )?;
    let reqs = st
        .query_map(params![id, max_requests.min(i64::MAX as u64) as i64], |r| {
            Ok(RequestRow {
                at: r.get(0)?,
                method: r.get(1)?,
                status: r.get(2)?,
                range: r.get(3)?,
                bytes: r.get(4)?,
                completed: r.get(5)?,
                ms: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Some((d, reqs)))
}

/// Forgets downloads whose last activity is before `before_ms` (and their requests).
pub fn sweep(conn: &Connection, before_ms: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM downloads WHERE last_at < ?1", [before_ms])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "foreign_keys", "ON").unwrap();
        crate::catalog::migrations::run(&c).unwrap();
        c
    }

    fn req(link: &[u8], client: &str, outcome: &str, at: i64, bytes: u64) -> NewRequest {
        NewRequest {
            at,
            link: link.to_vec(),
            client: client.into(),
            outcome: outcome.into(),
            file_id: Some("f".into()),
            app_id: Some("a".into()),
            tag: None,
            item: None,
            link_expires_at: Some(99),
            anti_fraud: false,
            method: "GET".into(),
            status: if outcome.is_empty() { 206 } else { 403 },
            range: None,
            bytes,
            completed: true,
            ms: 1,
        }
    }

    #[test]
    fn many_requests_of_one_client_are_one_download() {
        let c = db();
        let batch = vec![
            req(b"L1", "192.0.2.1", "", 10, 100),
            req(b"L1", "192.0.2.1", "", 20, 50),
            req(b"L1", "192.0.2.2", "", 30, 7),
            req(b"L1", "192.0.2.2", "link_shared", 40, 0),
            req(b"L1", "192.0.2.2", "link_shared", 50, 0),
        ];
        assert_eq!(insert_batch(&c, &batch).unwrap(), 2, "refusals start no download");
        assert_eq!(
            insert_batch(&c, &[req(b"L1", "192.0.2.1", "", 60, 1)]).unwrap(),
            0
        );
        let per_request: Vec<(i64, i64)> = c
            .prepare("SELECT at, bytes FROM download_requests ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            per_request,
            [(10, 100), (20, 50), (30, 7), (40, 0), (50, 0), (60, 1)],
            "one row per request, folded downloads or not"
        );
        let all = Query {
            limit: 100,
            ..Default::default()
        };
        let (rows, total) = list(&c, &all).unwrap();
        assert_eq!(total, 3);
        let first = rows.iter().find(|r| r.client == "192.0.2.1").unwrap();
        assert_eq!(
            (first.requests, first.bytes, first.first_at, first.last_at),
            (3, 151, 10, 60)
        );
        let refused = list(
            &c,
            &Query {
                refused: Some(true),
                ..all.clone()
            },
        )
        .unwrap();
        assert_eq!((refused.1, refused.0[0].requests), (1, 2));
        let by_reason = list(
            &c,
            &Query {
                outcome: Some("link_shared".into()),
                ..all.clone()
            },
        )
        .unwrap();
        assert_eq!(by_reason.1, 1);
        let window = list(
            &c,
            &Query {
                from: Some(45),
                to: Some(100),
                ..all.clone()
            },
        )
        .unwrap();
        assert_eq!(window.1, 2, "the 192.0.2.2 delivery ended at 30");
        let (d, reqs) = get(&c, first.id, 10).unwrap().unwrap();
        assert_eq!(d.id, first.id);
        assert_eq!(reqs.iter().map(|r| r.bytes).collect::<Vec<_>>(), vec![100, 50, 1]);
        assert_eq!(sweep(&c, 55).unwrap(), 2);
        let n: i64 = c
            .query_row("SELECT count(*) FROM download_requests", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3, "requests go with their download");
    }

    #[test]
    fn a_large_batch_keeps_every_field_of_every_request_in_order() {
        let c = db();
        // Two full multi-row statements and a remainder, over three downloads.
        let batch: Vec<NewRequest> = (0..2 * REQUESTS_PER_INSERT as i64 + 6)
            .map(|i| {
                let mut r = req(
                    format!("L{}", i % 3).as_bytes(),
                    "192.0.2.1",
                    "",
                    1000 + i,
                    i as u64 * 7,
                );
                r.method = if i % 2 == 0 { "GET" } else { "HEAD" }.into();
                r.status = if i % 5 == 0 { 200 } else { 206 };
                r.range = (i % 4 != 0).then(|| format!("bytes={i}-"));
                r.completed = i % 7 != 0;
                r.ms = i as u64 + 3;
                r
            })
            .collect();
        assert_eq!(insert_batch(&c, &batch).unwrap(), 3);
        let (rows, _) = list(
            &c,
            &Query {
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap();
        let mut got = Vec::new();
        for d in &rows {
            let (_, reqs) = get(&c, d.id, 1000).unwrap().unwrap();
            got.extend(
                reqs.into_iter()
                    .map(|r| (r.at, r.method, r.status, r.range, r.bytes, r.completed, r.ms)),
            );
        }
        got.sort();
        let want: Vec<_> = batch
            .iter()
            .map(|r| {
                (
                    r.at,
                    r.method.clone(),
                    r.status,
                    r.range.clone(),
                    r.bytes as i64,
                    r.completed,
                    r.ms as i64,
                )
            })
            .collect();
        assert_eq!(got, want);
        // Each download has its own requests: 24, 23 and 23 of them.
        let mut counts: Vec<i64> = rows.iter().map(|d| d.requests).collect();
        counts.sort();
        assert_eq!(counts, [23, 23, 24]);
    }
}
