//! AutoGraph: tagged links as issued (`autograph_links`, keyed by the mark id their
//! copies carry) and backtraces with the marks they found.

use rusqlite::{params, Connection, OptionalExtension};

use crate::autograph::MarkId;

/// A tagged link, as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub mark_id: MarkId,
    pub file_id: String,
    pub tag: String,
    pub app_id: Option<String>,
    /// ms since the epoch.
    pub issued_at: i64,
    /// The link's expiry, Unix seconds.
    pub expires_at: i64,
}

pub fn insert_link(conn: &Connection, l: &LinkRow) -> rusqlite::Result<()> {
    // The same link issued twice (same token) is the same row.
    conn.prepare_cached(
        "INSERT OR IGNORE INTO autograph_links(mark_id, file_id, tag, app_id, issued_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        &l.mark_id[..],
        l.file_id,
        l.tag,
        l.app_id,
        l.issued_at,
        l.expires_at
    ])?;
    Ok(())
}

pub fn link(conn: &Connection, mark_id: &MarkId) -> rusqlite::Result<Option<LinkRow>> {
    conn.query_row(
        "SELECT file_id, tag, app_id, issued_at, expires_at FROM autograph_links WHERE mark_id = ?1",
        [&mark_id[..]],
        |r| {
            Ok(LinkRow {
                mark_id: *mark_id,
                file_id: r.get(0)?,
                tag: r.get(1)?,
                app_id: r.get(2)?,
                issued_at: r.get(3)?,
                expires_at: r.get(4)?,
            })
        },
    )
    .optional()
}

/// What a backtrace concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// At least one authentic mark.
    Found = 0,
    /// Nothing shaped like a mark.
    NoMark = 1,
    /// Marks, none of them authentic.
    ForgedMark = 2,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Found => "found",
            Outcome::NoMark => "no_mark",
            Outcome::ForgedMark => "forged_mark",
        }
    }
    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Found, Outcome::NoMark, Outcome::ForgedMark]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// A mark found in a suspect copy (authentic or not: a forgery is evidence too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundMark {
    pub mark_id: MarkId,
    pub file_id: String,
    pub tag: String,
    pub authentic: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backtrace {
    pub id: String,
    /// The application that asked.
    pub app_id: Option<String>,
    pub created_at: i64,
    /// The suspect copy's file name, as sent.
    pub name: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub outcome: Outcome,
    pub marks: Vec<FoundMark>,
}

/// Writes a backtrace and its marks (call inside one write transaction).
pub fn insert_backtrace(conn: &Connection, b: &Backtrace) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO backtraces(id, app_id, created_at, name, size, sha256, result)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            b.id,
            b.app_id,
            b.created_at,
            b.name,
            i64::try_from(b.size).unwrap_or(i64::MAX),
            b.sha256,
            b.outcome.as_str()
        ],
    )?;
    let mut st = conn.prepare_cached(
        "INSERT INTO backtrace_marks(backtrace_id, idx, mark_id, file_id, tag, authentic)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (i, m) in b.marks.iter().enumerate() {
        st.execute(params![
            b.id,
            i as i64,
            &m.mark_id[..],
            m.file_id,
            m.tag,
            m.authentic
        ])?;
    }
    Ok(())
}

const BACKTRACE_COLS: &str = "id, app_id, created_at, name, size, sha256, result";

fn backtrace_row(r: &rusqlite::Row) -> rusqlite::Result<Backtrace> {
    let result: String = r.get(6)?;
    Ok(Backtrace {
        id: r.get(0)?,
        app_id: r.get(1)?,
        created_at: r.get(2)?,
        name: r.get(3)?,
        size: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        sha256: r.get(5)?,
        outcome: Outcome::parse(&result).unwrap_or(Outcome::NoMark),
        marks: Vec::new(),
    })
}

fn marks_of(conn: &Connection, id: &str) -> rusqlite::Result<Vec<FoundMark>> {
    let mut st = conn.prepare_cached(
        "SELECT mark_id, file_id, tag, authentic FROM backtrace_marks WHERE backtrace_id = ?1 ORDER BY idx",
    )?;
    let marks = st
        .query_map([id], |r| {
            let raw: Vec<u8> = r.get(0)?;
            Ok(FoundMark {
                mark_id: raw.try_into().unwrap_or([0; 16]),
                file_id: r.get(1)?,
                tag: r.get(2)?,
                authentic: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(marks)
}

pub fn backtrace(conn: &Connection, id: &str) -> rusqlite::Result<Option<Backtrace>> {
    let Some(mut b) = conn
        .query_row(
            &format!("SELECT {BACKTRACE_COLS} FROM backtraces WHERE id = ?1"),
            [id],
            backtrace_row,
        )
        .optional()?
    else {
        return Ok(None);
    };
    b.marks = marks_of(conn, id)?;
    Ok(Some(b))
}

/// A page of backtraces (newest first unless `ascending`), with their marks, and the
/// total; `result` filters by outcome.
pub fn list_backtraces(
    conn: &Connection,
    result: Option<Outcome>,
    ascending: bool,
    start: u64,
    limit: u64,
) -> rusqlite::Result<(Vec<Backtrace>, u64)> {
    let r = result.map(Outcome::as_str);
    let named: Vec<(&str, &dyn rusqlite::ToSql)> = match &r {
        Some(r) => vec![(":result", r)],
        None => Vec::new(),
    };
    let filter = if r.is_some() { "result = :result" } else { "1" };
    let window = super::Window {
        column: "created_at",
        ascending,
        start,
        limit,
    };
    let (mut rows, total) = super::page(
        conn,
        "backtraces",
        BACKTRACE_COLS,
        filter,
        &named,
        window,
        backtrace_row,
    )?;
    for b in &mut rows {
        b.marks = marks_of(conn, &b.id)?;
    }
    Ok((rows, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_backtraces_round_trip() {
        let c = Connection::open_in_memory().unwrap();
        c.pragma_update(None, "foreign_keys", "ON").unwrap();
        crate::catalog::migrations::run(&c).unwrap();
        let l = LinkRow {
            mark_id: [5; 16],
            file_id: "6b08ff8271f7fb127f98db8d".into(),
            tag: "cust-1".into(),
            app_id: Some("6b08f0fb1333542cfa08a2b5".into()),
            issued_at: 10,
            expires_at: 20,
        };
        insert_link(&c, &l).unwrap();
        insert_link(&c, &l).unwrap();
        assert_eq!(link(&c, &[5; 16]).unwrap(), Some(l));
        assert_eq!(link(&c, &[6; 16]).unwrap(), None);
        let b = Backtrace {
            id: "6b08ff8271f7fb127f98db8e".into(),
            app_id: None,
            created_at: 30,
            name: Some("leak.mp4".into()),
            size: 1234,
            sha256: "ab".into(),
            outcome: Outcome::ForgedMark,
            marks: vec![FoundMark {
                mark_id: [5; 16],
                file_id: "6b08ff8271f7fb127f98db8d".into(),
                tag: "cust-2".into(),
                authentic: false,
            }],
        };
        insert_backtrace(&c, &b).unwrap();
        assert_eq!(backtrace(&c, &b.id).unwrap(), Some(b.clone()));
        assert_eq!(
            list_backtraces(&c, None, false, 0, 10).unwrap(),
            (vec![b.clone()], 1)
        );
        assert_eq!(
            list_backtraces(&c, Some(Outcome::Found), false, 0, 10).unwrap(),
            (vec![], 0)
        );
        assert_eq!(backtrace(&c, "nope").unwrap(), None);
    }
}
