//! `filegate admin …`

use std::io::{BufRead, IsTerminal, Write};

use crate::admin::password;
use crate::cli::AdminCommand;
use crate::error::StartupError;
use crate::state::AppState;

pub fn run(state: &AppState, cmd: AdminCommand) -> Result<(), StartupError> {
    match cmd {
        AdminCommand::SetPassword { password_stdin } => {
            let pw = if password_stdin || !std::io::stdin().is_terminal() {
                read_line()?
            } else {
                let a = prompt("New console password: ")?;
                let b = prompt("Again: ")?;
                if a != b {
                    return Err(StartupError::Other("the two passwords differ".into()));
                }
                a
            };
            let conn = state.catalog.conn()?;
            password::set(&conn, &pw).map_err(StartupError::Other)?;
            println!("Console password set. Log in at /admin as user \"admin\".");
            Ok(())
        }
    }
}

fn read_line() -> Result<String, StartupError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| StartupError::Other(e.to_string()))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Reads a line with terminal echo off (via `stty`, so no unsafe code is needed).
fn prompt(label: &str) -> Result<String, StartupError> {
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    let _ = stty("-echo");
    let line = read_line();
    let _ = stty("echo");
    eprintln!();
    line
}
