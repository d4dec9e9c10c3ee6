//! The command line: global flags and subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;

#[derive(Debug, Parser)]
#[command(
    name = "filegate",
    version,
    about = "Signed, time-limited download links for files you keep on your own server"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file (default: $FILEGATE_CONFIG, else /etc/filegate/filegate.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: catalog, blobs and keys (default ./filegate-data).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long, global = true, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Base URL of links and hrefs, e.g. https://files.example.com.
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

impl Global {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            public_url: self.public_url.clone(),
            log_format: self.log_format.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API, the link delivery and the background sweeps.
    Serve,
    /// Manage applications (API clients).
    #[command(subcommand)]
    App(AppCommand),
    /// Upload a file to a running server with an application's credentials.
    Upload(UploadArgs),
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The file to upload; its name becomes the display name.
    pub file: PathBuf,
    /// Object key (a relative path, unique within the pipeline); default: the file's id.
    #[arg(long, value_name = "KEY")]
    pub object_key: Option<String>,
    /// Pipeline (namespace of object keys) to upload into.
    #[arg(long, value_name = "ID")]
    pub pipeline: Option<String>,
    /// Expiry in milliseconds since the epoch; 0 = never (default: the server's).
    #[arg(long, value_name = "MS")]
    pub expires_at: Option<u64>,
    /// Allow AutoGraph-tagged downloads of this file.
    #[arg(long)]
    pub autograph: bool,
    /// Server base URL, http:// only (default: http:// and the configured listen address).
    #[arg(long, value_name = "URL", env = "FILEGATE_SERVER")]
    pub server: Option<String>,
    /// The application's client_id.
    #[arg(long, value_name = "ID", env = "FILEGATE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The application's client_secret (prefer the environment: flags show in `ps`).
    #[arg(
        long,
        value_name = "SECRET",
        env = "FILEGATE_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an application and print its client_id and client_secret (shown once).
    Create {
        name: String,
        /// Comma-separated scopes, e.g. mediahub,autograph (default: mediahub).
        #[arg(long, default_value = "mediahub")]
        scopes: String,
    },
    /// List applications.
    List,
    /// Disable an application: its tokens and signed URLs stop working at once.
    Disable { client_id: String },
    /// Enable an application again.
    Enable { client_id: String },
}
