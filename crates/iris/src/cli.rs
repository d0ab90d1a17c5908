//! Command-line interface: subcommands, their help texts, and dispatch to the roles.
use crate::config::{self, LogFormat, Overrides};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "iris",
    version,
    about = "Iris — self-hosted unified communications: messaging, presence, calls, conferences, telephony.",
    long_about = "Iris — self-hosted unified communications.\n\n\
        Quick start on a fresh machine:\n  \
        iris serve --dev                       # HTTPS on https://localhost:8443, TURN on 3478\n  \
        iris user add alice@localhost --password 'change-me-now' --admin\n  \
        curl -k https://localhost:8443/api/v1/auth/login -H 'content-type: application/json' \\\n       \
        -d '{\"login\":\"alice@localhost\",\"password\":\"change-me-now\"}'\n\n\
        Settings come from --config FILE (see `iris config example`), then IRIS_* environment\n\
        variables (IRIS_DOMAIN=chat.example.com, IRIS_HTTP__LISTEN='[\"0.0.0.0:8443\"]'; `__`\n\
        separates sections), then flags."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file (TOML). Print a commented one with `iris config example`.
    #[arg(long, short = 'c', global = true, env = "IRIS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the database, certificates and secrets live (default ./iris-data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Log lines for people (human) or for log collectors (json).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every role in one process (API, web app, XMPP, relay) until SIGTERM/SIGINT.
    Serve(ServeArgs),
    /// Run only the STUN/TURN relay role (for relay machines), with the same config file.
    Relay(ServeArgs),
    /// Run only a conference unit (SFU) for media machines; `iris serve` reaches it over NATS.
    #[command(long_about = CONFERENCE_HELP)]
    Conference(ServeArgs),
    /// Manage user accounts (works while the server runs).
    #[command(subcommand)]
    User(UserCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print every flow firewalls must allow for this configuration (direction, protocol,
    /// ports, DNS names, purpose), per deployment profile, with client ephemeral port ranges.
    Ports(PortsArgs),
    /// Check from this network whether Iris at SERVER will work, and what to open otherwise.
    #[command(long_about = NETCHECK_HELP)]
    Netcheck(NetcheckArgs),
}

const CONFERENCE_HELP: &str = "Run only a conference unit (SFU) on this machine, with the same config file as `iris serve`.\n\n\
Clients send their media straight to this machine (UDP conference.port_min..=port_max, or\n\
conference.single_port; announce the public address with conference.public_ip). Signalling stays\n\
on the XMPP nodes: `iris serve` with roles.conference = false reaches the units over NATS\n\
([conference.control]: nats_url and a token, user/password or credentials file). Units announce\n\
themselves every heartbeat_ms with their load and media address; every participant of a bubble\n\
goes to the same unit, a new bubble to the least loaded one. A unit silent for unit_timeout_ms is\n\
gone: its participants are told their conference ended and may join again (on another unit).\n\n\
HTTPS on http.listen serves /healthz, /readyz (503 while draining) and /metrics.\n\
SIGTERM drains: no new joins, running conferences continue up to conference.drain_timeout_secs,\n\
then the unit says goodbye; a second signal stops at once.\n\n\
Example on a media machine (the XMPP node runs `iris serve` with the same [conference.control]):\n  \
IRIS_CONFERENCE__CONTROL__NATS_URL=nats://10.0.0.5:4222 \\\n  \
IRIS_CONFERENCE__CONTROL__TOKEN=… IRIS_CONFERENCE__PUBLIC_IP=203.0.113.10 iris conference";

const NETCHECK_HELP: &str = "Check from this network whether Iris at SERVER will work, and what to open otherwise.\n\n\
Probes DNS, TCP/TLS 443, HTTPS, the WebSocket upgrade, TCP 80, STUN on UDP 3478, then (with a login)\n\
TURN allocations exchanging data over UDP 3478, TLS 443, TCP 80/3478 and, with --proxy, TURN\n\
tunnelled through the proxy with CONNECT to 443 and 80. The first working media path is measured\n\
(RTT, jitter, loss, a bitrate ramp) against SPEC §7. Progress goes to stderr, the verdict to stdout.\n\n\
Exit codes:\n  \
0  everything works: media over UDP within the voice limits\n  \
1  works, degraded: media only over TCP/TLS or through the proxy, or beyond the limits\n  \
2  messaging works but no media path reaches the relay: calls fail\n  \
3  Iris is unreachable (DNS, HTTPS or WebSocket fail)\n  \
4  media not checked (no --user/--token, or login refused)\n  \
64 usage error\n\n\
Example: iris netcheck https://chat.example.com --user alice@example.com --proxy http://proxy:3128";

#[derive(Debug, Args)]
pub struct NetcheckArgs {
    /// The Iris server: https://host[:port] or host.
    pub server: String,
    /// HTTP proxy to test through as well: http://[user:password@]host:port.
    #[arg(long)]
    pub proxy: Option<String>,
    /// Login whose TURN credentials are used (password from IRIS_PASSWORD, --password-file or
    /// a prompt).
    #[arg(long)]
    pub user: Option<String>,
    /// File whose first line is the password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// An access token instead of --user.
    #[arg(long, env = "IRIS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Accept any server certificate (a server with a generated self-signed certificate).
    #[arg(long)]
    pub insecure: bool,
    /// Trust the certificates of this PEM file too (a private CA, a self-signed certificate).
    #[arg(long, conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Use this UDP port for the relay instead of the one the server advertises.
    #[arg(long)]
    pub udp_port: Option<u16>,
    /// Seconds each connection attempt or STUN transaction may take.
    #[arg(long, default_value = "3")]
    pub timeout: u64,
    /// Fewer echo probes and no bitrate ramp.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Debug, Args)]
pub struct PortsArgs {
    /// table (for people), nft (an `nft -f` ruleset with one address set per DNS name) or json.
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::ports::Format,
    /// Only these deployment profiles (repeatable; default: all).
    #[arg(long, value_enum)]
    pub profile: Vec<crate::ports::Profile>,
    /// Do not resolve DNS names into the nftables sets and JSON (leave the sets empty).
    #[arg(long)]
    pub no_resolve: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Development mode: listen on loopback only, on unprivileged ports (HTTPS 8443, plain
    /// 8080, TURN 3478) so no root is needed.
    #[arg(long)]
    pub dev: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (and their company if it does not exist).
    Add {
        /// Login of the form name@domain.
        login: String,
        /// Initial password (at least 8 characters).
        #[arg(long)]
        password: String,
        /// Company name (default "default").
        #[arg(long)]
        company: Option<String>,
        /// Display name (default: the name part of the login).
        #[arg(long)]
        name: Option<String>,
        /// Make the user an administrator of their company.
        #[arg(long, conflicts_with = "superadmin")]
        admin: bool,
        /// Make the user a platform superadmin (manages every company).
        #[arg(long)]
        superadmin: bool,
    },
    /// List users, optionally matching TEXT.
    List {
        /// Text to find in logins and display names.
        text: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user with their sessions and contacts.
    Del { login: String },
    /// Set a user's password (ends all their sessions and clears any lock-out).
    Passwd {
        login: String,
        #[arg(long)]
        password: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a fully commented example configuration.
    Example,
    /// Check the configuration (file + environment) and print the effective values.
    Check,
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let dev = match &cli.command {
        Command::Serve(a) | Command::Relay(a) | Command::Conference(a) => a.dev,
        _ => false,
    };
    let overrides = Overrides {
        data_dir: cli.global.data_dir.clone(),
        log_format: cli.global.log_format,
        dev,
    };
    if let Command::Config(ConfigCommand::Example) = cli.command {
        print!("{}", config::EXAMPLE);
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Netcheck(args) = cli.command {
        return crate::netcheck_cmd::run(args).await;
    }
    let config = config::load(cli.global.config.as_deref(), &overrides)
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    match cli.command {
        Command::Serve(_) => {
            crate::logging::init(&config.log)?;
            crate::serve::serve(config).await?;
        }
        Command::Relay(_) => {
            crate::logging::init(&config.log)?;
            crate::serve::relay_only(config).await?;
        }
        Command::Conference(_) => {
            crate::logging::init(&config.log)?;
            crate::serve::conference_only(config).await?;
        }
        Command::User(cmd) => return crate::user_cmd::run(config, cmd).await,
        Command::Config(ConfigCommand::Check) => {
            println!("configuration is valid:\n{config:#?}");
        }
        Command::Config(ConfigCommand::Example) | Command::Netcheck(_) => {}
        Command::Ports(args) => {
            let text =
                crate::ports::run(&config, args.format, &args.profile, !args.no_resolve).await;
            print!("{text}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
