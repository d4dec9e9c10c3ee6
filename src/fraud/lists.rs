//! The `blocklist` and `anonymizers` lists: imported into the catalog by source, held
//! in memory as [`RangeSet`]s, and reloaded when another process changes them.
//!
//! A list is the union of its sources (`filegate fraud import --list anonymizers
//! --source tor FILE`); re-importing a source replaces it in one transaction, so a
//! reader sees the old source or the new one, never half of each. Every change bumps a
//! generation counter in `meta`; a running server compares it every
//! [`RELOAD_EVERY_SECS`] seconds and reloads on a change (an import through the API
//! reloads at once). Serving reads the in-memory sets only: one `Arc` clone and two
//! binary searches per request.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use ipnet::IpNet;
use rusqlite::Connection;

use super::ranges::{self, LineError, RangeSet};
use crate::catalog::{self, fraud as table, Catalog};
use crate::error::{ApiError, StartupError};

/// A running server checks the lists' generation this often.
pub const RELOAD_EVERY_SECS: u64 = 10;
/// Longest source name.
pub const MAX_SOURCE: usize = 64;
/// The source an import goes to when it names none.
pub const DEFAULT_SOURCE: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// Clients refused on `anti_fraud` links (and on every link with
    /// `fraud.deny_blocklisted_always`).
    Blocklist,
    /// Tor exits, VPN and hosting ranges: refused on `anti_fraud` links.
    Anonymizers,
}

impl List {
    pub const ALL: [List; 2] = [List::Blocklist, List::Anonymizers];

    pub fn as_str(self) -> &'static str {
        match self {
            List::Blocklist => "blocklist",
            List::Anonymizers => "anonymizers",
        }
    }

    pub fn parse(s: &str) -> Option<List> {
        List::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// A source name: 1–64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_source(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SOURCE
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Both lists as loaded, and the generation they were loaded at.
#[derive(Debug, Clone, Default)]
pub struct Sets {
    pub blocklist: RangeSet,
    pub anonymizers: RangeSet,
    pub generation: i64,
}

impl Sets {
    pub fn get(&self, l: List) -> &RangeSet {
        match l {
            List::Blocklist => &self.blocklist,
            List::Anonymizers => &self.anonymizers,
        }
    }

    /// The lists that contain `ip`.
    pub fn lists_of(&self, ip: IpAddr) -> Vec<List> {
        List::ALL
            .into_iter()
            .filter(|l| self.get(*l).contains(ip))
            .collect()
    }
}

/// Reads both lists from the catalog.
pub fn load(conn: &Connection) -> rusqlite::Result<Sets> {
    // Read the generation first: a change landing during the load bumps it past this
    // value, so the next check reloads again rather than missing it.
    let generation = table::generation(conn)?;
    Ok(Sets {
        blocklist: RangeSet::from_ranges(table::ranges(conn, List::Blocklist.as_str())?),
        anonymizers: RangeSet::from_ranges(table::ranges(conn, List::Anonymizers.as_str())?),
        generation,
    })
}

/// Why an import was refused.
#[derive(Debug)]
pub enum ImportError {
    /// The file has a line that is not an address or CIDR: nothing was changed.
    Line(LineError),
    BadSource,
    Catalog(rusqlite::Error),
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportError::Line(e) => write!(f, "{e}"),
            ImportError::BadSource => write!(
                f,
                "a source name is 1 to {MAX_SOURCE} letters, digits, '.', '_' or '-'"
            ),
            ImportError::Catalog(e) => write!(f, "catalog: {e}"),
        }
    }
}

impl From<rusqlite::Error> for ImportError {
    fn from(e: rusqlite::Error) -> Self {
        ImportError::Catalog(e)
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Line(l) => ApiError::invalid("invalid_list_entry", format!("line {}", l.line)),
            ImportError::BadSource => ApiError::invalid("invalid_source", "source"),
            ImportError::Catalog(c) => ApiError::from(c),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Entries (lines with an address or CIDR) now in the source.
    pub entries: usize,
}

/// Parses `text` (one address or CIDR per line, `#` comments) and replaces the
/// source `(list, source)` with it, in one transaction. A file with a bad line changes
/// nothing.
pub fn import(
    conn: &mut Connection,
    list: List,
    source: &str,
    text: &str,
    now_ms: i64,
) -> Result<Imported, ImportError> {
    if !valid_source(source) {
        return Err(ImportError::BadSource);
    }
    let nets: Vec<IpNet> = ranges::parse_list(text).map_err(ImportError::Line)?;
    catalog::write_tx(conn, |tx| {
        table::replace_source(tx, list.as_str(), source, &nets, now_ms)
    })?;
    Ok(Imported { entries: nets.len() })
}

/// Adds the entries of `text` (the import format) to the source `(list, source)`,
/// keeping what it already holds (the console's "add ranges"); creates the source if
/// needed. Entries it already has are not added twice.
pub fn add(
    conn: &mut Connection,
    list: List,
    source: &str,
    text: &str,
    now_ms: i64,
) -> Result<Imported, ImportError> {
    if !valid_source(source) {
        return Err(ImportError::BadSource);
    }
    let new: Vec<IpNet> = ranges::parse_list(text).map_err(ImportError::Line)?;
    let entries = catalog::write_tx(conn, |tx| {
        let mut nets = held(tx, list, source)?;
        for n in new {
            if !nets.contains(&n) {
                nets.push(n);
            }
        }
        table::replace_source(tx, list.as_str(), source, &nets, now_ms)?;
        Ok::<_, rusqlite::Error>(nets.len())
    })?;
    Ok(Imported { entries })
}

/// Removes one entry (an address or CIDR, compared after normalising) from the source
/// `(list, source)`; a source left empty is removed. `None` when the source does not
/// hold it (nothing changed), else the entries left.
pub fn remove_entry(
    conn: &mut Connection,
    list: List,
    source: &str,
    entry: &str,
    now_ms: i64,
) -> Result<Option<usize>, ImportError> {
    let net = ranges::parse_entry(entry.trim()).ok_or(ImportError::Line(LineError {
        line: 1,
        message: format!("{entry:?} is not an IP address or CIDR range"),
    }))?;
    Ok(catalog::write_tx(conn, |tx| {
        let mut nets = held(tx, list, source)?;
        let before = nets.len();
        nets.retain(|n| *n != net);
        if nets.len() == before {
            return Ok::<_, rusqlite::Error>(None);
        }
        if nets.is_empty() {
            table::remove(tx, list.as_str(), Some(source))?;
        } else {
            table::replace_source(tx, list.as_str(), source, &nets, now_ms)?;
        }
        Ok(Some(nets.len()))
    })?)
}

/// Every entry of a source, parsed back.
fn held(conn: &Connection, list: List, source: &str) -> rusqlite::Result<Vec<IpNet>> {
    Ok(table::source_entries(conn, list.as_str(), source, u64::MAX)?
        .iter()
        .filter_map(|c| ranges::parse_entry(c))
        .collect())
}

/// The lists a process matches against, kept in step with the catalog.
pub struct LiveLists {
    catalog: Catalog,
    sets: RwLock<Arc<Sets>>,
}

impl LiveLists {
    pub fn open(catalog: &Catalog) -> Result<LiveLists, StartupError> {
        let sets = load(&*catalog.conn()?)?;
        Ok(LiveLists {
            catalog: catalog.clone(),
            sets: RwLock::new(Arc::new(sets)),
        })
    }

    /// The sets as loaded last (cheap: an `Arc` clone).
    pub fn current(&self) -> Arc<Sets> {
        self.sets.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn install(&self, sets: Sets) {
        tracing::info!(
            generation = sets.generation,
            blocklist_ranges = sets.blocklist.len(),
            anonymizer_ranges = sets.anonymizers.len(),
            "anti-fraud lists loaded"
        );
        *self.sets.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(sets);
    }

    /// Reloads when the catalog's generation differs from the one loaded; true if it did.
    pub async fn reload_if_changed(&self) -> Result<bool, ApiError> {
        let loaded = self.current().generation;
        let fresh = self
            .catalog
            .call(move |c| {
                if table::generation(c)? == loaded {
                    return Ok(None);
                }
                Ok(Some(load(c)?))
            })
            .await?;
        match fresh {
            Some(s) => {
                self.install(s);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// [`LiveLists::reload_if_changed`] for code that may block (CLI, tests).
    pub fn reload_blocking(&self) -> Result<(), ApiError> {
        let sets = load(&*self.catalog.conn()?)?;
        self.install(sets);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_with_a_bad_line_changes_nothing_and_a_good_one_replaces_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        let mut conn = catalog.conn().unwrap();
        let live = LiveLists::open(&catalog).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();

        import(&mut conn, List::Blocklist, "a", "192.0.2.0/24\n", 1).unwrap();
        let e = import(&mut conn, List::Blocklist, "a", "198.51.100.0/24\nnope\n", 2).unwrap_err();
        assert!(matches!(e, ImportError::Line(LineError { line: 2, .. })), "{e}");
        assert!(matches!(
            import(&mut conn, List::Blocklist, "a/b", "", 2),
            Err(ImportError::BadSource)
        ));
        live.reload_blocking().unwrap();
        assert_eq!(live.current().lists_of(ip("192.0.2.5")), vec![List::Blocklist]);
        assert!(live.current().lists_of(ip("198.51.100.5")).is_empty());

        let n = import(
            &mut conn,
            List::Anonymizers,
            "tor",
            "# exits\n198.51.100.5\n2001:db8::/32\n",
            3,
        )
        .unwrap();
        assert_eq!(n.entries, 2);
        let s = live.current();
        assert!(s.lists_of(ip("198.51.100.5")).is_empty(), "not reloaded yet");
        live.reload_blocking().unwrap();
        let s = live.current();
        assert_eq!(s.lists_of(ip("198.51.100.5")), vec![List::Anonymizers]);
        assert_eq!(s.lists_of(ip("2001:db8::9")), vec![List::Anonymizers]);
        assert_eq!(s.generation, 2);
    }
}
