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
    /// Manage the admin console.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Sign an API URL with an application's secret (MediaHub HMAC scheme) and print it.
    Sign(SignArgs),
    /// Manage the keys that sign download links.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Upload a file to a running server with an application's credentials.
    Upload(UploadArgs),
    /// Copy the data directory into DIR, consistently, while the server keeps running.
    Backup(BackupArgs),
    /// Check a backup and restore it into the (empty or new) data directory.
    Restore(RestoreArgs),
    /// Check the catalog against the blobs (also while the server runs); exits non-zero
    /// when problems are left.
    Verify(VerifyArgs),
    /// Manage the anti-fraud lists: blocklist and anonymizers.
    #[command(subcommand)]
    Fraud(FraudCommand),
    /// Show the download audit trail (deliveries and refusals), most recent first.
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup: a new or empty directory, outside the data directory.
    pub dir: PathBuf,
    /// Copy every blob, even when DIR is on the data directory's filesystem (where blobs
    /// are hard-linked by default).
    #[arg(long)]
    pub copy: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A directory written by `filegate backup`.
    pub dir: PathBuf,
    /// Also recompute every blob's SHA-256 and MD5 before restoring.
    #[arg(long)]
    pub verify_checksums: bool,
    /// Copy every blob, even when the backup is on the target's filesystem.
    #[arg(long)]
    pub copy: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Recompute every blob's SHA-256 and MD5 (reads every byte).
    #[arg(long)]
    pub checksums: bool,
    /// Remove orphan blobs, strays and leftover chunks, fix reference counts, and mark
    /// files whose bytes are missing or damaged.
    #[arg(long)]
    pub repair: bool,
}

#[derive(Debug, Subcommand)]
pub enum FraudCommand {
    /// Replace one source of a list with a file: one address or CIDR per line, `#`
    /// comments. A file with a bad line changes nothing.
    Import {
        /// blocklist or anonymizers.
        #[arg(long, value_name = "NAME")]
        list: String,
        /// The source within the list (e.g. tor, vpn, manual); re-importing it replaces it.
        #[arg(long, value_name = "NAME", default_value = "default")]
        source: String,
        /// The file, or - for standard input.
        file: PathBuf,
    },
    /// Show the lists, their sources and sizes.
    List,
    /// Tell whether an address is on a list, and by which entries.
    Check { ip: String },
    /// Remove a source from a list (every source with no --source).
    Remove {
        #[arg(long, value_name = "NAME")]
        list: String,
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only downloads of this file.
    #[arg(long, value_name = "ID")]
    pub file: Option<String>,
    /// Only links issued to this application (client_id).
    #[arg(long, value_name = "ID")]
    pub app: Option<String>,
    /// Only this AutoGraph tag.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Only this client address.
    #[arg(long, value_name = "IP")]
    pub client: Option<String>,
    /// Only refusals with this reason (e.g. link_shared).
    #[arg(long, value_name = "REASON")]
    pub reason: Option<String>,
    /// Only refusals.
    #[arg(long, conflicts_with = "delivered")]
    pub refused: bool,
    /// Only deliveries.
    #[arg(long)]
    pub delivered: bool,
    /// Active since: a duration back from now (90s, 15m, 2h, 7d) or milliseconds since the epoch.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Begun before: like --since.
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Show one download with its requests.
    #[arg(long, value_name = "N")]
    pub id: Option<i64>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Path and query to sign, e.g. '/v1/files/downloads/?file_id=…&redirect=true'.
    pub path_and_query: String,
    /// The application's client_id.
    #[arg(long, env = "FILEGATE_CLIENT_ID")]
    pub client_id: String,
    /// The application's client_secret.
    #[arg(long, env = "FILEGATE_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: String,
    /// Seconds from now until the signed URL (and the link it yields) expires.
    #[arg(long, default_value_t = 3600)]
    pub expires_in: u64,
    /// Make the URL work once (adds multi_use=false).
    #[arg(long)]
    pub single_use: bool,
    /// Prefix the printed URL with this base, e.g. https://files.example.com.
    #[arg(long)]
    pub base_url: Option<String>,
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

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set the console password of the user `admin` (asked twice on a terminal, or one
    /// line from standard input with --password-stdin).
    SetPassword {
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new signing key: new links use it; links signed with older keys keep
    /// working until they expire or their key is retired.
    Rotate,
    /// List signing keys.
    List,
    /// Retire a key: links signed with it stop working (on a running server within
    /// seconds). Retiring the current key creates a new one to sign with.
    Retire { id: u32 },
}
