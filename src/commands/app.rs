//! `filegate app …`

use crate::auth::apps as auth_apps;
use crate::auth::Scopes;
use crate::catalog::apps;
use crate::cli::AppCommand;
use crate::error::StartupError;
use crate::state::AppState;

pub fn run(state: &AppState, cmd: AppCommand) -> Result<(), StartupError> {
    let conn = state.catalog.conn()?;
    let now = state.clock.now_ms();
    match cmd {
        AppCommand::Create { name, scopes } => {
            let scopes = Scopes::parse(&scopes)
                .map_err(|w| StartupError::Other(format!("unknown scope {w:?}; known: {}", Scopes::all())))?;
            if scopes.is_empty() {
                return Err(StartupError::Other(
                    "--scopes must name at least one scope".into(),
                ));
            }
            if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
                return Err(StartupError::Other(
                    "the name must be 1-200 printable characters".into(),
                ));
            }
            let app = auth_apps::create(&conn, &state.secrets, &name, scopes, now)?;
            println!("client_id: {}", app.client_id);
            println!("client_secret: {}", app.client_secret);
            println!("scopes: {}", app.scopes);
            eprintln!("The secret is shown only this once; store it now.");
        }
        AppCommand::List => {
            println!("{:<24}  {:<8}  {:<40}  NAME", "CLIENT_ID", "ENABLED", "SCOPES");
            for a in apps::list(&conn)? {
                println!(
                    "{:<24}  {:<8}  {:<40}  {}",
                    a.id,
                    if a.enabled { "yes" } else { "no" },
                    a.scopes,
                    a.name
                );
            }
        }
        AppCommand::Disable { client_id } => set(&conn, &client_id, false, now)?,
        AppCommand::Enable { client_id } => set(&conn, &client_id, true, now)?,
    }
    Ok(())
}

fn set(conn: &rusqlite::Connection, id: &str, enabled: bool, now: i64) -> Result<(), StartupError> {
    if !apps::set_enabled(conn, id, enabled, now)? {
        return Err(StartupError::Other(format!("no application {id:?}")));
    }
    println!("{id}: {}", if enabled { "enabled" } else { "disabled" });
    Ok(())
}
