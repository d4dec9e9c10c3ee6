//! Configuration: built-in defaults → TOML file → `FILEGATE_*` environment → flags.
//!
//! Every layer is checked against the defaults' shape, so an unknown key or a value
//! of the wrong type stops start-up with a message naming the key.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use toml::Value;

use crate::error::StartupError;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/filegate/filegate.toml";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub links: LinksConfig,
    pub tokens: TokensConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub archives: ArchivesConfig,
    pub fraud: FraudConfig,
    pub audit: AuditConfig,
}

/// Caps on what indexing one archive may cost; an archive past any of them is stored as
/// a plain file (README "Archives").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ArchivesConfig {
    /// Most entries (files, directories, links) in one archive.
    pub max_entries: u64,
    /// Most bytes the entries of one archive may hold uncompressed.
    pub max_total_size: u64,
    /// Most uncompressed bytes per byte of archive (applies past 16 MiB uncompressed).
    pub max_ratio: u64,
}

impl Default for ArchivesConfig {
    fn default() -> Self {
        let l = crate::archive::Limits::default();
        ArchivesConfig {
            max_entries: l.max_entries,
            max_total_size: l.max_total_size,
            max_ratio: l.max_ratio,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FraudConfig {
    /// Refuse blocklisted clients on every link, not only on `anti_fraud` ones.
    pub deny_blocklisted_always: bool,
    /// IPv4 prefix length that makes two addresses "the same client" for `link_shared`.
    pub same_client_prefix_v4: u32,
    /// IPv6 prefix length that makes two addresses "the same client" for `link_shared`.
    pub same_client_prefix_v6: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Longest time a delivery's audit row waits before its batch is written, in ms.
    pub flush_ms: u64,
    /// A batch is written as soon as it holds this many rows.
    pub batch_size: u64,
    /// Downloads whose last activity is older than this many days are forgotten; 0 = keep.
    pub retention_days: u64,
}

impl Default for FraudConfig {
    fn default() -> Self {
        FraudConfig {
            deny_blocklisted_always: false,
            same_client_prefix_v4: 32,
            same_client_prefix_v6: 64,
        }
    }
}

impl ArchivesConfig {
    pub fn limits(&self) -> crate::archive::Limits {
        crate::archive::Limits {
            max_entries: self.max_entries,
            max_total_size: self.max_total_size,
            max_ratio: self.max_ratio,
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            flush_ms: 200,
            batch_size: 500,
            retention_days: 365,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Bearer token a scraper must send to `GET /metrics`; empty = loopback clients only.
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on (`127.0.0.1:8080`; port 0 picks a free one).
    pub listen: String,
    /// Base of every absolute URL we hand out; empty = from the request's Host.
    pub public_url: String,
    /// Peers (CIDRs) whose X-Forwarded-* / Forwarded headers are believed.
    pub trusted_proxies: Vec<String>,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// On SIGTERM/SIGINT, seconds to let running requests (downloads) finish.
    pub shutdown_grace: u64,
    /// Seconds a client has to send a request's head (line and headers); then 408.
    pub request_timeout: u64,
    /// Seconds an idle keep-alive connection stays open; 0 = no keep-alive.
    pub keep_alive: u64,
    /// Seconds of waiting for a request body after which it must have brought at least
    /// `body_min_rate` bytes per second (else 408 and the connection is closed).
    pub body_timeout: u64,
    /// Slowest accepted pace of a request body, bytes per second (see `body_timeout`).
    pub body_min_rate: u64,
    /// Largest request head (request line and header fields), bytes; larger → 431.
    pub max_header_bytes: u64,
    /// `trusted_proxies` parsed once ([`Config::prepare`]), so that resolving a client
    /// address on the request path parses nothing.
    #[serde(skip)]
    pub trusted_nets: Vec<IpNet>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Holds the catalog (SQLite), the blobs and the key files.
    pub data_dir: PathBuf,
    /// Largest accepted upload in bytes (a whole file, all chunks together).
    pub max_upload_size: u64,
    /// Seconds after which an upload's files expire when the upload names no
    /// `expires_at`; 0 = never.
    pub default_file_ttl: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LinksConfig {
    /// Life of a download link when the request gives no `expiry_time`, in seconds.
    pub default_ttl: u64,
    /// Longest life a link may be given, in seconds.
    pub max_ttl: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Life of an OAuth2 access token when the request gives no `expires_in`, in seconds.
    pub default_ttl: u64,
    /// Longest life a token may be given, in seconds.
    pub max_ttl: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (for a terminal) or `json` (one object per line, for journald and collectors).
    pub format: String,
    /// Default filter, e.g. `info` or `filegate=debug`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: String::new(),
            trusted_proxies: Vec::new(),
            workers: 0,
            shutdown_grace: 30,
            request_timeout: 5,
            keep_alive: 5,
            body_timeout: 60,
            body_min_rate: 512,
            max_header_bytes: 32 * 1024,
            trusted_nets: Vec::new(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("./filegate-data"),
            max_upload_size: 64 << 30,
            default_file_ttl: 0,
        }
    }
}

impl Default for LinksConfig {
    fn default() -> Self {
        LinksConfig {
            default_ttl: 24 * 3600,
            max_ttl: 30 * 24 * 3600,
        }
    }
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            default_ttl: 7200,
            max_ttl: 30 * 24 * 3600,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// The layers above the defaults, as the CLI gathered them.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config FILE`; when `None`, `FILEGATE_CONFIG` then the default path (if present).
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub public_url: Option<String>,
    pub log_format: Option<String>,
}

/// Short environment names that scripts rely on (SPEC §9); every key also has the
/// generic form `FILEGATE_<SECTION>__<KEY>`, e.g. `FILEGATE_LINKS__MAX_TTL`.
const ENV_ALIASES: &[(&str, &str)] = &[
    ("FILEGATE_LISTEN", "server.listen"),
    ("FILEGATE_DATA_DIR", "storage.data_dir"),
    ("FILEGATE_PUBLIC_URL", "server.public_url"),
    ("FILEGATE_LOG_FORMAT", "log.format"),
];

impl Config {
    /// Loads the configuration from the process environment.
    pub fn load(o: &Overrides) -> Result<Config, StartupError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(o, &env)
    }

    /// Loads with an explicit environment (tests pass their own).
    pub fn load_from(o: &Overrides, env: &[(String, String)]) -> Result<Config, StartupError> {
        let err = StartupError::Config;
        let mut tree = Value::try_from(Config::default()).map_err(|e| err(e.to_string()))?;

        let env_get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let file = match &o.config_file {
            Some(p) => Some(p.clone()),
            None => match env_get("FILEGATE_CONFIG") {
                Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
                _ => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
            },
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
            let doc: toml::Table =
                toml::from_str(&text).map_err(|e| err(format!("{}: {}", path.display(), e.message())))?;
            merge(&mut tree, Value::Table(doc), "", &path.display().to_string())?;
        }

        let mut vars: Vec<&(String, String)> =
            env.iter().filter(|(k, _)| k.starts_with("FILEGATE_")).collect();
        vars.sort();
        for (name, value) in vars {
            let key = if let Some((_, k)) = ENV_ALIASES.iter().find(|(n, _)| n == name) {
                k.to_string()
            } else if let Some(rest) = name.strip_prefix("FILEGATE_").filter(|r| r.contains("__")) {
                rest.to_ascii_lowercase().replacen("__", ".", 1)
            } else {
                // Other FILEGATE_* names belong to commands (FILEGATE_CLIENT_ID, …).
                continue;
            };
            set_from_str(&mut tree, &key, value, name)?;
        }

        let flags = [
            ("server.listen", o.listen.clone()),
            (
                "storage.data_dir",
                o.data_dir.as_ref().map(|p| p.display().to_string()),
            ),
            ("server.public_url", o.public_url.clone()),
            ("log.format", o.log_format.clone()),
        ];
        for (key, v) in flags {
            if let Some(v) = v {
                set_from_str(&mut tree, key, &v, "a command-line flag")?;
            }
        }

        let cfg: Config = tree
            .try_into()
            .map_err(|e: toml::de::Error| err(e.message().to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that have the right type but not a usable meaning.
    pub fn validate(&self) -> Result<(), StartupError> {
        let bad = |key: &str, why: String| Err(StartupError::Config(format!("{key}: {why}")));
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return bad(
                "server.listen",
                format!(
                    "{:?} is not an ADDRESS:PORT such as 127.0.0.1:8080",
                    self.server.listen
                ),
            );
        }
        let url = &self.server.public_url;
        if !url.is_empty() {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => {}
                _ => {
                    return bad(
                        "server.public_url",
                        format!("{url:?} is not an http:// or https:// URL without query"),
                    )
                }
            }
        }
        for p in &self.server.trusted_proxies {
            if parse_cidr(p).is_none() {
                return bad(
                    "server.trusted_proxies",
                    format!("{p:?} is not an IP address or CIDR range"),
                );
            }
        }
        for (key, v) in [
            ("server.request_timeout", self.server.request_timeout),
            ("server.body_timeout", self.server.body_timeout),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1 second".into());
            }
        }
        if self.server.max_header_bytes < 8 * 1024 {
            return bad(
                "server.max_header_bytes",
                "must be at least 8192 (a download link alone can take 6 KiB)".into(),
            );
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return bad("storage.data_dir", "must not be empty".into());
        }
        if self.storage.max_upload_size == 0 {
            return bad("storage.max_upload_size", "must be at least 1 byte".into());
        }
        for (key, v) in [
            ("links.default_ttl", self.links.default_ttl),
            ("links.max_ttl", self.links.max_ttl),
            ("tokens.default_ttl", self.tokens.default_ttl),
            ("tokens.max_ttl", self.tokens.max_ttl),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1 second".into());
            }
        }
        if self.links.default_ttl > self.links.max_ttl {
            return bad("links.default_ttl", "must not exceed links.max_ttl".into());
        }
        if self.tokens.default_ttl > self.tokens.max_ttl {
            return bad("tokens.default_ttl", "must not exceed tokens.max_ttl".into());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return bad(
                "log.format",
                format!("{:?} is neither \"text\" nor \"json\"", self.log.format),
            );
        }
        for (key, v) in [
            ("archives.max_entries", self.archives.max_entries),
            ("archives.max_total_size", self.archives.max_total_size),
            ("archives.max_ratio", self.archives.max_ratio),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1".into());
            }
        }
        if !(1..=32).contains(&self.fraud.same_client_prefix_v4) {
            return bad("fraud.same_client_prefix_v4", "must be 1 to 32".into());
        }
        if !(1..=128).contains(&self.fraud.same_client_prefix_v6) {
            return bad("fraud.same_client_prefix_v6", "must be 1 to 128".into());
        }
        if !(10..=60_000).contains(&self.audit.flush_ms) {
            return bad("audit.flush_ms", "must be 10 to 60000 (ms)".into());
        }
        if !(1..=100_000).contains(&self.audit.batch_size) {
            return bad("audit.batch_size", "must be 1 to 100000".into());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad("log.level", format!("{:?} is not a log filter", self.log.level));
        }
        Ok(())
    }

    /// Parses what the request path needs pre-parsed; done by `AppState::open`.
    pub fn prepare(&mut self) {
        self.server.trusted_nets = self
            .server
            .trusted_proxies
            .iter()
            .filter_map(|p| parse_cidr(p))
            .collect();
    }

    /// The trusted proxy ranges (validate() has checked them): the prepared ones, or
    /// parsed now for a configuration that was not prepared.
    pub fn trusted_proxies(&self) -> Cow<'_, [IpNet]> {
        if self.server.trusted_nets.len() == self.server.trusted_proxies.len() {
            Cow::Borrowed(&self.server.trusted_nets)
        } else {
            Cow::Owned(
                self.server
                    .trusted_proxies
                    .iter()
                    .filter_map(|p| parse_cidr(p))
                    .collect(),
            )
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.storage.data_dir
    }
}

/// An address (`10.0.0.1`, `::1`) or a range (`10.0.0.0/8`).
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// Lays `over` onto `base`, refusing keys the defaults do not have and values of another type.
fn merge(base: &mut Value, over: Value, path: &str, source: &str) -> Result<(), StartupError> {
    match (base, over) {
        (Value::Table(b), Value::Table(o)) => {
            for (k, v) in o {
                let key = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let Some(slot) = b.get_mut(&k) else {
                    return Err(StartupError::Config(format!("{key}: unknown key (in {source})")));
                };
                merge(slot, v, &key, source)?;
            }
            Ok(())
        }
        (slot, v) => {
            if std::mem::discriminant(slot) != std::mem::discriminant(&v) {
                return Err(StartupError::Config(format!(
                    "{path}: expected {}, found {} (in {source})",
                    slot.type_str(),
                    v.type_str()
                )));
            }
            *slot = v;
            Ok(())
        }
    }
}

/// Sets `key` from a string (environment or flag), converted to the default's type.
fn set_from_str(tree: &mut Value, key: &str, raw: &str, source: &str) -> Result<(), StartupError> {
    let err = |why: String| Err(StartupError::Config(format!("{key}: {why} (from {source})")));
    let mut slot = &mut *tree;
    for part in key.split('.') {
        match slot.get_mut(part) {
            Some(s) => slot = s,
            None => return err("unknown key".into()),
        }
    }
    let value = match slot {
        Value::String(_) => Value::String(raw.to_string()),
        Value::Integer(_) => match raw.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Value::Integer(n),
            _ => return err(format!("{raw:?} is not a whole number")),
        },
        Value::Boolean(_) => match raw.trim() {
            "true" | "1" => Value::Boolean(true),
            "false" | "0" => Value::Boolean(false),
            _ => return err(format!("{raw:?} is not true or false")),
        },
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ),
        _ => return err("cannot be set from a string".into()),
    };
    *slot = value;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: Option<&str>, env: &[(&str, &str)], o: Overrides) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let mut o = o;
        if let Some(t) = toml_text {
            let p = dir.path().join("f.toml");
            std::fs::write(&p, t).unwrap();
            o.config_file = Some(p);
        }
        let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        Config::load_from(&o, &env).map_err(|e| e.to_string())
    }

    #[test]
    fn no_configuration_gives_loopback_8080_and_local_data_dir() {
        let c = load(None, &[], Overrides::default()).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.storage.data_dir, PathBuf::from("./filegate-data"));
    }

    #[test]
    fn file_then_env_then_flags_override_in_that_order() {
        let text = "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"https://a.example\"\n[links]\nmax_ttl = 100\ndefault_ttl = 50\n";
        let c = load(
            Some(text),
            &[
                ("FILEGATE_LISTEN", "127.0.0.1:2"),
                ("FILEGATE_LINKS__MAX_TTL", "70"),
            ],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:2");
        assert_eq!(c.links.max_ttl, 70);
        assert_eq!(c.server.public_url, "https://a.example");
        let o = Overrides {
            listen: Some("127.0.0.1:3".into()),
            ..Default::default()
        };
        let c = load(Some(text), &[("FILEGATE_LISTEN", "127.0.0.1:2")], o).unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:3");
    }

    #[test]
    fn client_limits_are_read_and_bad_values_are_named() {
        let c = load(
            Some("[server]\nrequest_timeout = 2\nbody_timeout = 10\nbody_min_rate = 100\n"),
            &[("FILEGATE_SERVER__MAX_HEADER_BYTES", "16384")],
            Overrides::default(),
        )
        .unwrap();
        let s = &c.server;
        assert_eq!(
            (
                s.request_timeout,
                s.keep_alive,
                s.body_timeout,
                s.body_min_rate,
                s.max_header_bytes
            ),
            (2, 5, 10, 100, 16384)
        );
        for (env, key) in [
            ("FILEGATE_SERVER__REQUEST_TIMEOUT", "server.request_timeout"),
            ("FILEGATE_SERVER__BODY_TIMEOUT", "server.body_timeout"),
            ("FILEGATE_SERVER__MAX_HEADER_BYTES", "server.max_header_bytes"),
        ] {
            let e = load(None, &[(env, "0")], Overrides::default()).unwrap_err();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn unknown_key_in_file_is_named() {
        let e = load(Some("[server]\nlisten_addr = \"x\"\n"), &[], Overrides::default()).unwrap_err();
        assert!(e.contains("server.listen_addr: unknown key"), "{e}");
        let e = load(Some("[servr]\n"), &[], Overrides::default()).unwrap_err();
        assert!(e.contains("servr: unknown key"), "{e}");
    }

    #[test]
    fn wrong_type_and_bad_values_are_named() {
        let e = load(Some("[links]\nmax_ttl = \"long\"\n"), &[], Overrides::default()).unwrap_err();
        assert!(e.contains("links.max_ttl: expected integer"), "{e}");
        let e = load(None, &[("FILEGATE_LINKS__MAX_TTL", "soon")], Overrides::default()).unwrap_err();
        assert!(
            e.contains("links.max_ttl") && e.contains("FILEGATE_LINKS__MAX_TTL"),
            "{e}"
        );
        let e = load(None, &[("FILEGATE_LISTEN", "nowhere")], Overrides::default()).unwrap_err();
        assert!(e.contains("server.listen"), "{e}");
        let e = load(
            None,
            &[("FILEGATE_SERVER__TRUSTED_PROXIES", "10.0.0.0/8, banana")],
            Overrides::default(),
        )
        .unwrap_err();
        assert!(
            e.contains("server.trusted_proxies") && e.contains("banana"),
            "{e}"
        );
        let e = load(None, &[("FILEGATE_NOPE__X", "1")], Overrides::default()).unwrap_err();
        assert!(e.contains("nope.x: unknown key"), "{e}");
        let e = load(
            Some("[links]\ndefault_ttl = 10\nmax_ttl = 5\n"),
            &[],
            Overrides::default(),
        )
        .unwrap_err();
        assert!(e.contains("links.default_ttl"), "{e}");
    }

    #[test]
    fn fraud_and_audit_sections_have_defaults_and_bounds() {
        let c = load(None, &[], Overrides::default()).unwrap();
        assert_eq!(c.fraud, FraudConfig::default());
        assert_eq!(
            (c.fraud.same_client_prefix_v4, c.fraud.same_client_prefix_v6),
            (32, 64)
        );
        assert!(!c.fraud.deny_blocklisted_always);
        let c = load(
            Some("[fraud]\nsame_client_prefix_v4 = 24\ndeny_blocklisted_always = true\n"),
            &[("FILEGATE_FRAUD__SAME_CLIENT_PREFIX_V6", "48")],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            (c.fraud.same_client_prefix_v4, c.fraud.same_client_prefix_v6),
            (24, 48)
        );
        assert!(c.fraud.deny_blocklisted_always);
        for (text, key) in [
            (
                "[fraud]\nsame_client_prefix_v4 = 33\n",
                "fraud.same_client_prefix_v4",
            ),
            (
                "[fraud]\nsame_client_prefix_v6 = 0\n",
                "fraud.same_client_prefix_v6",
            ),
            (
                "[fraud]\nsame_client_prefix_v4 = 300\n",
                "fraud.same_client_prefix_v4",
            ),
            ("[audit]\nflush_ms = 0\n", "audit.flush_ms"),
            ("[audit]\nbatch_size = 0\n", "audit.batch_size"),
            ("[fraud]\nblocklist = []\n", "fraud.blocklist: unknown key"),
        ] {
            let e = load(Some(text), &[], Overrides::default()).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn prepared_trusted_proxies_are_parsed_once_and_match_the_unprepared_answer() {
        let mut c = Config::default();
        c.server.trusted_proxies = vec!["10.0.0.0/8".into(), "::1".into()];
        let unprepared = c.trusted_proxies().into_owned();
        c.prepare();
        assert!(matches!(c.trusted_proxies(), Cow::Borrowed(_)));
        assert_eq!(c.trusted_proxies().as_ref(), unprepared.as_slice());
    }

    #[test]
    fn trusted_proxies_from_env_is_a_list() {
        let c = load(
            None,
            &[("FILEGATE_SERVER__TRUSTED_PROXIES", "10.0.0.0/8,::1")],
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(c.trusted_proxies().len(), 2);
    }
}
