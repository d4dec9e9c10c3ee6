//! Parse the command line, start logging, dispatch a subcommand.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use filegate::cli::{Cli, Command};
use filegate::clock::SystemClock;
use filegate::config::Config;
use filegate::error::StartupError;
use filegate::state::AppState;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("filegate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), StartupError> {
    let config = Config::load(&cli.global.overrides())?;
    filegate::logging::init(&config.log.format, &config.log.level);
    match cli.command {
        Command::Serve => actix_web::rt::System::new().block_on(filegate::server::run(config)),
        Command::Sign(args) => filegate::commands::sign::run(args, &SystemClock),
        Command::Admin(cmd) => {
            let state = AppState::open(config, Arc::new(SystemClock))?;
            filegate::commands::admin::run(&state, cmd)
        }
        Command::App(cmd) => {
            let state = AppState::open(config, Arc::new(SystemClock))?;
            filegate::commands::app::run(&state, cmd)
        }
        Command::Keys(cmd) => {
            let state = AppState::open(config, Arc::new(SystemClock))?;
            filegate::commands::keys::run(&state, cmd)
        }
        Command::Upload(args) => filegate::commands::upload::run(&config, args),
        Command::Backup(args) => filegate::commands::backup::run(&config, args, &SystemClock),
        Command::Restore(args) => filegate::commands::backup::restore(&config, args),
        Command::Verify(args) => filegate::commands::verify::run(&config, args, &SystemClock),
        Command::Fraud(cmd) => {
            let state = AppState::open(config, Arc::new(SystemClock))?;
            filegate::commands::fraud::run(&state, cmd)
        }
        Command::Audit(args) => {
            let state = AppState::open(config, Arc::new(SystemClock))?;
            filegate::commands::audit::run(&state, args)
        }
    }
}
