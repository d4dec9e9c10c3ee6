//! Anti-fraud tables: CIDR lists by source (`fraud_sources`, `fraud_ranges`) with a
//! generation counter in `meta`, and the first use of `anti_fraud` links.

use ipnet::IpNet;
use rusqlite::{params, Connection, OptionalExtension};

use crate::fraud::ranges::bounds;

/// `meta` key bumped by every change to a list: a running server reloads when it moves.
pub const GENERATION_KEY: &str = "fraud_generation";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    pub list: String,
    pub source: String,
    pub entries: i64,
    pub imported_at: i64,
}

fn bump_generation(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?1, '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        [GENERATION_KEY],
    )?;
    Ok(())
}

/// The lists' generation (0 before any import).
pub fn generation(conn: &Connection) -> rusqlite::Result<i64> {
    Ok(crate::catalog::meta::get(conn, GENERATION_KEY)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Replaces every range of `(list, source)` with `nets`. Call inside a write
/// transaction: readers see the old source or the new one, never a mix.
pub fn replace_source(
    conn: &Connection,
    list: &str,
    source: &str,
    nets: &[IpNet],
    now_ms: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM fraud_ranges WHERE list = ?1 AND source = ?2",
        params![list, source],
    )?;
    conn.execute(
        "INSERT INTO fraud_sources(list, source, entries, imported_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(list, source) DO UPDATE SET entries = excluded.entries, imported_at = excluded.imported_at",
        params![list, source, nets.len() as i64, now_ms],
    )?;
    let mut st = conn.prepare_cached(
        "INSERT INTO fraud_ranges(list, source, cidr, first, last) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for n in nets {
        let (first, last) = bounds(n);
        st.execute(params![
            list,
            source,
            n.to_string(),
            &first.to_be_bytes()[..],
            &last.to_be_bytes()[..]
        ])?;
    }
    bump_generation(conn)
}

/// Drops a source (or, with `source = None`, every source of the list); the number of
/// sources removed.
pub fn remove(conn: &Connection, list: &str, source: Option<&str>) -> rusqlite::Result<usize> {
    let n = match source {
        Some(s) => conn.execute(
            "DELETE FROM fraud_sources WHERE list = ?1 AND source = ?2",
            params![list, s],
        )?,
        None => conn.execute("DELETE FROM fraud_sources WHERE list = ?1", [list])?,
    };
    if n > 0 {
        bump_generation(conn)?;
    }
    Ok(n)
}

pub fn sources(conn: &Connection) -> rusqlite::Result<Vec<SourceRow>> {
    let mut st =
        conn.prepare("SELECT list, source, entries, imported_at FROM fraud_sources ORDER BY list, source")?;
    let rows = st.query_map([], |r| {
        Ok(SourceRow {
            list: r.get(0)?,
            source: r.get(1)?,
            entries: r.get(2)?,
            imported_at: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// The entries (CIDR text) of one source, in the order they sort as text, at most `limit`.
pub fn source_entries(
    conn: &Connection,
    list: &str,
    source: &str,
    limit: u64,
) -> rusqlite::Result<Vec<String>> {
    let mut st =
        conn.prepare("SELECT cidr FROM fraud_ranges WHERE list = ?1 AND source = ?2 ORDER BY cidr LIMIT ?3")?;
    let rows = st.query_map(
        params![list, source, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| r.get(0),
    )?;
    rows.collect()
}

fn point(b: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    u128::from_be_bytes(a)
}

/// Every range of `list`, unmerged, in no particular order.
pub fn ranges(conn: &Connection, list: &str) -> rusqlite::Result<Vec<(u128, u128)>> {
    let mut st = conn.prepare("SELECT first, last FROM fraud_ranges WHERE list = ?1")?;
    let rows = st.query_map([list], |r| {
        let a: Vec<u8> = r.get(0)?;
        let b: Vec<u8> = r.get(1)?;
        Ok((point(&a), point(&b)))
    })?;
    rows.collect()
}

/// The entries that contain point `p`: (list, source, cidr). A scan: for `fraud check`
/// and the API's explanation, not for serving (which uses the in-memory sets).
pub fn entries_containing(conn: &Connection, p: u128) -> rusqlite::Result<Vec<(String, String, String)>> {
    let key = &p.to_be_bytes()[..];
    let mut st = conn.prepare(
        "SELECT list, source, cidr FROM fraud_ranges WHERE first <= ?1 AND last >= ?1
         ORDER BY list, source, cidr LIMIT 100",
    )?;
    let rows = st.query_map([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Records `client_net` as the first user of `link` unless one is recorded; answers the
/// network recorded (this one, or the earlier winner's). Call inside a write
/// transaction: of two first uses at once, exactly one is recorded.
pub fn claim_first_use(
    conn: &Connection,
    link: &[u8],
    client_net: &str,
    client: &str,
    now_ms: i64,
    expires_at: i64,
) -> rusqlite::Result<String> {
    conn.execute(
        "INSERT INTO link_first_use(link, client_net, client, first_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(link) DO NOTHING",
        params![link, client_net, client, now_ms, expires_at],
    )?;
    conn.query_row(
        "SELECT client_net FROM link_first_use WHERE link = ?1",
        [link],
        |r| r.get(0),
    )
}

pub fn first_use(conn: &Connection, link: &[u8]) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT client_net FROM link_first_use WHERE link = ?1",
        [link],
        |r| r.get(0),
    )
    .optional()
}

/// Forgets first uses of links expired before `now_secs`.
pub fn sweep_first_use(conn: &Connection, now_secs: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM link_first_use WHERE expires_at <= ?1", [now_secs])
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
    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|x| x.parse().unwrap()).collect()
    }

    #[test]
    fn a_reimport_replaces_only_its_source_and_bumps_the_generation() {
        let c = db();
        assert_eq!(generation(&c).unwrap(), 0);
        replace_source(&c, "blocklist", "a", &nets(&["10.0.0.0/8", "192.0.2.0/24"]), 1).unwrap();
        replace_source(&c, "blocklist", "b", &nets(&["198.51.100.0/24"]), 2).unwrap();
        replace_source(&c, "anonymizers", "a", &nets(&["2001:db8::/32"]), 3).unwrap();
        assert_eq!(generation(&c).unwrap(), 3);
        assert_eq!(ranges(&c, "blocklist").unwrap().len(), 3);
        replace_source(&c, "blocklist", "a", &nets(&["203.0.113.0/24"]), 4).unwrap();
        assert_eq!(ranges(&c, "blocklist").unwrap().len(), 2);
        assert_eq!(ranges(&c, "anonymizers").unwrap().len(), 1);
        let s = sources(&c).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[1].list.as_str(), s[1].source.as_str(), s[1].entries),
            ("blocklist", "a", 1)
        );
        let p = crate::fraud::ranges::point("203.0.113.9".parse().unwrap());
        assert_eq!(
            entries_containing(&c, p).unwrap(),
            vec![("blocklist".into(), "a".into(), "203.0.113.0/24".into())]
        );
        assert_eq!(remove(&c, "blocklist", Some("a")).unwrap(), 1);
        assert_eq!(
            ranges(&c, "blocklist").unwrap().len(),
            1,
            "ranges go with their source"
        );
        assert_eq!(remove(&c, "blocklist", Some("a")).unwrap(), 0);
        assert_eq!(generation(&c).unwrap(), 5);
        assert!(c
            .execute(
                "INSERT INTO fraud_sources(list, source, entries, imported_at) VALUES ('nope', 'x', 0, 0)",
                []
            )
            .is_err());
    }

    #[test]
    fn the_first_use_of_a_link_is_kept_until_it_expires() {
        let c = db();
        assert_eq!(first_use(&c, b"L").unwrap(), None);
        assert_eq!(
            claim_first_use(&c, b"L", "192.0.2.1/32", "192.0.2.1", 5, 100).unwrap(),
            "192.0.2.1/32"
        );
        assert_eq!(
            claim_first_use(&c, b"L", "198.51.100.1/32", "198.51.100.1", 6, 100).unwrap(),
            "192.0.2.1/32",
            "the first one stays"
        );
        assert_eq!(sweep_first_use(&c, 99).unwrap(), 0);
        assert_eq!(sweep_first_use(&c, 100).unwrap(), 1);
        assert_eq!(first_use(&c, b"L").unwrap(), None);
    }
}
