//! The whole configuration: a TOML file, then `IRIS_…` environment variables, then command-line
//! flags, each overriding the one before. Unknown keys are errors that name the key.
use iris_conference::ConferenceConfig;
use iris_model::Secret;
use iris_relay::RelayConfig;
use iris_services::AccountsConfig;
use iris_xmpp_server::XmppConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The commented example printed by `iris config example` (and parsed by a test).
pub const EXAMPLE: &str = include_str!("../iris.example.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The service's DNS name: logins are `name@domain`, the certificate is made for it.
    pub domain: String,
    /// Where the database, the generated certificate and secrets live.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub auth: AccountsConfig,
    pub roles: RolesConfig,
    pub relay: RelayConfig,
    pub xmpp: XmppConfig,
    pub conference: ConferenceConfig,
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: "localhost".into(),
            data_dir: PathBuf::from("./iris-data"),
            database: DatabaseConfig::default(),
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            auth: AccountsConfig::default(),
            roles: RolesConfig::default(),
            relay: RelayConfig::default(),
            xmpp: XmppConfig::default(),
            conference: ConferenceConfig::default(),
            log: LogConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite:///path/iris.db` or `postgres://user@host/db`. Empty: SQLite in the data dir.
    pub url: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// TLS listeners for HTTPS, WSS and TURN over TLS.
    pub listen: Vec<SocketAddr>,
    /// Plain TCP listeners: TURN over TCP and a redirect of HTTP to HTTPS.
    pub plain_listen: Vec<SocketAddr>,
    /// The HTTPS port clients use, if it differs from the listen port (behind port forwarding).
    pub public_port: Option<u16>,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    pub max_connections_per_ip: u32,
    pub max_connections: u32,
    pub hsts: bool,
    /// On SIGTERM, how long in-flight requests and connections may take to finish.
    pub drain_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 443))],
            plain_listen: vec![SocketAddr::from(([0, 0, 0, 0], 80))],
            public_port: None,
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            max_connections_per_ip: 256,
            max_connections: 50_000,
            hsts: true,
            drain_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain. With `key_file`; otherwise a self-signed pair is generated.
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolesConfig {
    /// Run the STUN/TURN relay inside `iris serve`.
    pub relay: bool,
    /// Run XMPP (WebSocket on the HTTPS listener, TCP 5222 STARTTLS, direct TLS 5223).
    pub xmpp: bool,
    /// Run the conference unit (SFU); its signalling goes over XMPP, so it needs `xmpp`.
    pub conference: bool,
}

impl Default for RolesConfig {
    fn default() -> Self {
        RolesConfig {
            relay: true,
            xmpp: true,
            conference: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter such as `info` or `info,iris_relay=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

/// Flags that override the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    /// Development ports on loopback (8443 HTTPS, 8080 plain, 3478 relay).
    pub dev: bool,
}

/// Loads `file` (if given), then `IRIS_*` variables (`IRIS_HTTP__LISTEN='["0.0.0.0:8443"]'`,
/// `__` separates sections), then `overrides`.
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, String> {
    use figment::providers::{Env, Format, Toml};
    let mut figment = figment::Figment::new();
    if let Some(path) = file {
        if !path.exists() {
            return Err(format!(
                "configuration file {} does not exist",
                path.display()
            ));
        }
        figment = figment.merge(Toml::file(path));
    }
    // IRIS_WEB_DIST is read by the iris-web build script, not a setting.
    figment = figment.merge(Env::prefixed("IRIS_").split("__").ignore(&[
        "config",
        "log_filter",
        "web_dist",
    ]));
    let mut config: Config = figment.extract().map_err(|e| {
        e.into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if let Some(dir) = &overrides.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(format) = overrides.log_format {
        config.log.format = format;
    }
    if overrides.dev {
        let lo = [127, 0, 0, 1];
        config.http.listen = vec![SocketAddr::from((lo, 8443))];
        config.http.plain_listen = vec![SocketAddr::from((lo, 8080))];
        config.relay.udp_listen = vec![SocketAddr::from((lo, 3478))];
        config.relay.tcp_listen = vec![SocketAddr::from((lo, 3478))];
        config.relay.relay_ips = vec![[127, 0, 0, 1].into()];
        config.xmpp.c2s_listen = vec![SocketAddr::from((lo, 5222))];
        config.xmpp.direct_tls_listen = vec![SocketAddr::from((lo, 5223))];
        config.conference.bind = lo.into();
    }
    if config.relay.realm == RelayConfig::default().realm {
        config.relay.realm = config.domain.clone();
    }
    // The plain listeners hand TURN connections to the relay; it must not bind them itself.
    config.relay.tcp_listen.retain(|a| {
        !config
            .http
            .plain_listen
            .iter()
            .any(|p| p.port() == a.port())
    });
    Ok(config)
}

impl Config {
    /// The database URL: configured, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) if !url.is_empty() => url.expose().to_owned(),
            _ => format!("sqlite://{}", self.data_dir.join("iris.db").display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_and_matches_defaults_where_it_says_so() {
        let dir = std::env::temp_dir().join(format!("iris-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("iris.toml");
        std::fs::write(&path, EXAMPLE).expect("write");
        let config = load(Some(&path), &Overrides::default()).expect("example parses");
        assert_eq!(config.http.listen, HttpConfig::default().listen);
        assert_eq!(config.domain, "localhost");
        assert!(config.roles.relay);
    }

    #[test]
    fn unknown_keys_are_named() {
        let dir = std::env::temp_dir().join(format!("iris-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("iris.toml");
        std::fs::write(&path, "[http]\nlisten_port = 8443\n").expect("write");
        let err = load(Some(&path), &Overrides::default()).expect_err("must fail");
        assert!(err.contains("listen_port"), "{err}");
    }

    #[test]
    fn secrets_do_not_leak_through_debug() {
        let mut config = Config::default();
        config.auth.token_secret = Secret::new("super-secret-value");
        config.database.url = Some(Secret::new("postgres://u:pw@h/db"));
        let text = format!("{config:?}");
        assert!(
            !text.contains("super-secret-value") && !text.contains("pw@h"),
            "{text}"
        );
    }
}
