//! `filegate fraud …`: import, list, check and remove anti-fraud list sources in the
//! catalog (a running server picks changes up within `RELOAD_EVERY_SECS`).

use std::io::Read;

use crate::catalog::{self, fraud as table};
use crate::cli::FraudCommand;
use crate::delivery::validators::http_date;
use crate::error::StartupError;
use crate::fraud::lists::{self, List, RELOAD_EVERY_SECS};
use crate::fraud::ranges;
use crate::state::AppState;

fn list_arg(name: &str) -> Result<List, StartupError> {
    List::parse(name)
        .ok_or_else(|| StartupError::Other(format!("unknown list {name:?}: use blocklist or anonymizers")))
}

pub fn run(state: &AppState, cmd: FraudCommand) -> Result<(), StartupError> {
    let mut conn = state.catalog.conn()?;
    match cmd {
        FraudCommand::Import { list, source, file } => {
            let list = list_arg(&list)?;
            let mut text = String::new();
            let read = if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)
            } else {
                std::fs::File::open(&file).and_then(|mut f| f.read_to_string(&mut text))
            };
            read.map_err(|e| StartupError::Other(format!("{}: {e}", file.display())))?;
            let n = lists::import(&mut conn, list, &source, &text, state.clock.now_ms())
                .map_err(|e| StartupError::Other(format!("{}: {e} (nothing was changed)", file.display())))?;
            println!("{}/{source}: {} entries imported", list.as_str(), n.entries);
            eprintln!("A running server uses them within {RELOAD_EVERY_SECS} s.");
        }
        FraudCommand::List => {
            let sets = lists::load(&conn)?;
            let rows = table::sources(&conn)?;
            println!("{:<12}  {:<20}  {:>9}  IMPORTED", "LIST", "SOURCE", "ENTRIES");
            for l in List::ALL {
                for r in rows.iter().filter(|r| r.list == l.as_str()) {
                    println!(
                        "{:<12}  {:<20}  {:>9}  {}",
                        r.list,
                        r.source,
                        r.entries,
                        http_date(r.imported_at.div_euclid(1000))
                    );
                }
                println!(
                    "{:<12}  {:<20}  {:>9}  (merged ranges)",
                    l.as_str(),
                    "*",
                    sets.get(l).len()
                );
            }
        }
        FraudCommand::Check { ip } => {
            let addr = crate::api::downloads::parse_ip(&ip)
                .map_err(|_| StartupError::Other(format!("{ip:?} is not an IP address")))?;
            let sets = lists::load(&conn)?;
            let on = sets.lists_of(addr);
            if on.is_empty() {
                println!("{addr}: on no list");
            } else {
                let names: Vec<&str> = on.iter().map(|l| l.as_str()).collect();
                println!("{addr}: {}", names.join(", "));
                for (l, s, c) in table::entries_containing(&conn, ranges::point(addr))? {
                    println!("  {l:<12}  {s:<20}  {c}");
                }
            }
        }
        FraudCommand::Remove { list, source } => {
            let list = list_arg(&list)?;
            let n = catalog::write_tx(&mut conn, |tx| {
                table::remove(tx, list.as_str(), source.as_deref())
            })?;
            if n == 0 {
                return Err(StartupError::Other(format!(
                    "{} has no source {}",
                    list.as_str(),
                    source.as_deref().unwrap_or("at all")
                )));
            }
            println!("removed {n} source(s) from {}", list.as_str());
        }
    }
    Ok(())
}
