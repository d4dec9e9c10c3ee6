//! `filegate keys …`: rotate, list and retire link signing keys in the catalog.

use crate::catalog::keys::{self, KeyState};
use crate::cli::KeysCommand;
use crate::delivery::keyring::{self, Retired, RELOAD_EVERY_SECS};
use crate::delivery::validators::http_date;
use crate::error::StartupError;
use crate::state::AppState;

pub fn run(state: &AppState, cmd: KeysCommand) -> Result<(), StartupError> {
    let mut conn = state.catalog.conn()?;
    let now = state.clock.now_ms();
    match cmd {
        KeysCommand::Rotate => {
            let id = keyring::create(&mut conn, &state.secrets, now)?;
            println!("created signing key {id}; it signs new links from now on");
            eprintln!(
                "A running server switches to it within {RELOAD_EVERY_SECS} s. Links signed with \
                 older keys keep working until they expire or their key is retired."
            );
        }
        KeysCommand::List => {
            let rows = keys::list(&conn)?;
            let current = rows
                .iter()
                .rev()
                .find(|k| k.state == KeyState::Active)
                .map(|k| k.id);
            println!("{:<10}  {:<8}  {:<29}  RETIRED", "ID", "STATE", "CREATED");
            for k in rows {
                let state = if Some(k.id) == current {
                    "current"
                } else {
                    k.state.as_str()
                };
                println!(
                    "{:<10}  {:<8}  {:<29}  {}",
                    k.id,
                    state,
                    http_date(k.created_at.div_euclid(1000)),
                    k.retired_at
                        .map(|t| http_date(t.div_euclid(1000)))
                        .unwrap_or_default()
                );
            }
        }
        KeysCommand::Retire { id } => match keyring::retire(&mut conn, &state.secrets, id, now)? {
            Retired::Done { replaced_by } => {
                println!("retired signing key {id}");
                if let Some(new) = replaced_by {
                    println!("created signing key {new}; it signs new links from now on");
                }
                eprintln!(
                    "A running server refuses links signed with key {id} within {RELOAD_EVERY_SECS} s."
                );
            }
            Retired::AlreadyRetired => println!("signing key {id} was already retired"),
            Retired::NotFound => return Err(StartupError::Other(format!("no signing key {id}"))),
        },
    }
    Ok(())
}
