//! `iris serve`, `iris relay` and `iris conference`: builds every role from the configuration,
//! binds the listeners, prints where they are, and drains gracefully on SIGTERM/SIGINT.
use crate::config::Config;
use crate::secrets;
use anyhow::{bail, Context};
use axum::extract::Request;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use iris_api::{ApiLimits, AppState};
use iris_model::Secret;
use iris_net::dispatch::{looks_like_stun, Dispatch, Route};
use iris_net::listener::ListenerConfig;
use iris_net::{http_handler, tls, ConnLimiter, Shutdown, StreamHandler};
use iris_relay::{IceServers, Relay, RelayHandle, RelayServer, Transport};
use iris_services::{Accounts, Bubbles, Contacts};
use iris_xmpp_server::XmppServer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

/// Everything that runs, for the drain at the end.
struct Running {
    shutdown: Shutdown,
    tracker: TaskTracker,
    relay: Option<Arc<RelayHandle>>,
    draining: Arc<AtomicBool>,
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();

    let store = iris_store::Store::open(&config.database_url())
        .await
        .context("cannot open the database")?;
    let token_secret =
        secrets::load_or_create(&config.auth.token_secret, &config.data_dir, "token.key")?;
    let accounts = Accounts::new(store.clone(), config.auth.clone(), token_secret)?;
    let contacts = Contacts::new(store.clone());
    let bubbles = Bubbles::new(
        store.clone(),
        format!("{}.{}", config.xmpp.muc_subdomain, config.domain),
    );

    let tls = tls_material(&config)?;
    let relay = start_relay(&config).await?;
    let xmpp = if config.roles.xmpp {
        let tls_config = tls::server_config(tls.0.clone(), tls.1.clone_key(), Vec::new())?;
        let handle = XmppServer::start(
            config.xmpp.clone(),
            config.domain.clone(),
            accounts.clone(),
            contacts.clone(),
            bubbles.clone(),
            store.clone(),
            tls_config,
        )
        .await
        .map_err(|e| anyhow::anyhow!("xmpp: {e}"))?;
        Some(handle)
    } else {
        None
    };
    let conference = match &xmpp {
        Some(xmpp) if config.roles.conference => Some(start_conference(&config, xmpp).await?),
        _ => None,
    };
    let remote_units = match &xmpp {
        Some(xmpp) if !config.roles.conference && config.conference.control.nats_url.is_some() => {
            Some(start_remote_units(&config, xmpp).await?)
        }
        _ => None,
    };
    let draining = Arc::new(AtomicBool::new(false));
    let ice = Arc::new(IceSource::default());
    let state = AppState {
        accounts,
        contacts,
        bubbles,
        metrics,
        ice: relay
            .as_ref()
            .map(|_| ice.clone() as Arc<dyn iris_api::IceServerSource>),
        draining: draining.clone(),
    };
    let limits = ApiLimits {
        body_limit_bytes: config.http.body_limit_bytes,
        request_timeout: Duration::from_secs(config.http.request_timeout_secs),
        hsts: config.http.hsts,
    };
    // The web client at `/` (embedded by iris-web).
    let mut extra = iris_web::router();
    if let Some(xmpp) = &xmpp {
        extra = extra.merge(xmpp.router());
    }
    let router = iris_api::router(state, &limits, extra);

    let running = Running {
        shutdown: Shutdown::default(),
        tracker: TaskTracker::new(),
        relay,
        draining,
    };
    let https = listen(&config, &running, router, tls).await?;
    if let Some(relay) = &running.relay {
        ice.configure(&config, relay, &https)?;
    }
    print_banner(&config, &https, running.relay.as_deref(), started);
    if let Some(xmpp) = &xmpp {
        println!(
            "  XMPP                  wss://…/xmpp-websocket  c2s (STARTTLS) {}  direct TLS {}",
            join(&xmpp.c2s_addrs()),
            join(&xmpp.direct_tls_addrs())
        );
    }
    if let Some(unit) = &conference {
        println!(
            "  conference            UDP {}",
            conference_ports(&config, unit)
        );
    }
    if let Some(remote) = &remote_units {
        println!(
            "  conference            remote units over NATS {} (subjects {}.*; {} unit(s) seen)",
            iris_conference::control::display_url(&config.conference.control),
            config.conference.control.subject_prefix,
            remote.units().len()
        );
    }
    wait_for_signal().await;
    if let Some(unit) = &conference {
        // No new joins; running conferences go on (with their XMPP sessions) until they end.
        running.draining.store(true, Ordering::Relaxed);
        let deadline = Duration::from_secs(config.conference.drain_timeout_secs);
        let left = unit.drained(deadline).await;
        if left > 0 {
            tracing::warn!(
                left,
                "conference drain deadline passed; cutting the remaining calls"
            );
        }
    }
    if let Some(xmpp) = xmpp {
        // Streams get <see-other-host/> (when configured) or <system-shutdown/>, and the
        // archive is flushed, before HTTP drains.
        xmpp.shutdown().await;
    }
    drain(&config, running).await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The conference unit with its XMPP signalling registered on `xmpp`.
async fn start_conference(
    config: &Config,
    xmpp: &iris_xmpp_server::XmppHandle,
) -> anyhow::Result<iris_conference::ConferenceHandle> {
    let (unit, notices) = iris_conference::start(config.conference.clone())
        .await
        .context("conference: cannot bind the media socket")?;
    let bridge = iris_conference::Bridge::start(Arc::new(unit.clone()), notices, xmpp.pusher());
    xmpp.register_room_extension(Arc::new(bridge));
    Ok(unit)
}

/// The XMPP signalling of conferences, served by remote units (`iris conference`) over NATS.
async fn start_remote_units(
    config: &Config,
    xmpp: &iris_xmpp_server::XmppHandle,
) -> anyhow::Result<iris_conference::control::RemoteUnits> {
    let control = &config.conference.control;
    let client = iris_conference::control::connect(control, "iris-serve")
        .await
        .context("conference control channel")?;
    let (remote, notices) = iris_conference::control::RemoteUnits::start(client, control)
        .await
        .context("conference control channel")?;
    // Give running units one heartbeat to be seen before the banner.
    remote
        .wait_for_units(
            1,
            Duration::from_millis(control.heartbeat_ms.min(2000) + 200),
        )
        .await;
    let bridge = iris_conference::Bridge::start(Arc::new(remote.clone()), notices, xmpp.pusher());
    xmpp.register_room_extension(Arc::new(bridge));
    Ok(remote)
}

/// `iris conference`: a conference unit alone, serving the XMPP nodes' bridges over NATS, with
/// health, readiness (503 while draining) and metrics on the HTTPS listener.
pub async fn conference_only(config: Config) -> anyhow::Result<()> {
    use iris_conference::control;
    let started = Instant::now();
    let control_config = &config.conference.control;
    if control_config
        .nats_url
        .as_ref()
        .is_none_or(|u| u.is_empty())
    {
        bail!(
            "`iris conference` is reached by `iris serve` over NATS: set conference.control.nats_url \
             (or IRIS_CONFERENCE__CONTROL__NATS_URL=nats://host:4222) and the same value on the \
             XMPP nodes, which run with roles.conference = false. See `iris conference --help`."
        );
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    let name = control::unit_name(control_config)?;
    let client = control::connect(control_config, &format!("iris-conference-{name}"))
        .await
        .context("conference control channel")?;
    let (unit, notices) = iris_conference::start(config.conference.clone())
        .await
        .context("conference: cannot bind the media socket")?;
    let agent = control::Agent::start(client, &config.conference, name, unit.clone(), notices)
        .await
        .context("conference control channel")?;
    let draining = Arc::new(AtomicBool::new(false));
    let ready = draining.clone();
    let router = Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(move || {
                let draining = ready.load(Ordering::Relaxed);
                async move {
                    if draining {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            axum::Json(serde_json::json!({"status": "draining"})),
                        )
                    } else {
                        (
                            StatusCode::OK,
                            axum::Json(serde_json::json!({"status": "ready"})),
                        )
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let body = metrics.as_ref().map(|h| h.render()).unwrap_or_default();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
            }),
        );
    let running = Running {
        shutdown: Shutdown::default(),
        tracker: TaskTracker::new(),
        relay: None,
        draining: draining.clone(),
    };
    let https = listen(&config, &running, router, tls_material(&config)?).await?;
    println!(
        "Iris {} conference unit {} is running (ready in {} ms)",
        env!("CARGO_PKG_VERSION"),
        agent.name(),
        started.elapsed().as_millis()
    );
    println!(
        "  conference media      UDP {}",
        conference_ports(&config, &unit)
    );
    println!(
        "  control channel       NATS {} (subjects {}.*)",
        control::display_url(control_config),
        control_config.subject_prefix
    );
    println!(
        "  health / metrics      /healthz /readyz /metrics   (listening on {})",
        join(&https)
    );
    println!(
        "Stop with Ctrl-C: no new joins, running conferences continue up to {} s.",
        config.conference.drain_timeout_secs
    );
    wait_for_signal().await;
    tracing::info!(
        "draining: no new joins; running conferences continue (a second signal stops at once)"
    );
    draining.store(true, Ordering::Relaxed);
    tokio::spawn(async {
        wait_for_signal().await;
        eprintln!("second signal: stopping now");
        std::process::exit(130);
    });
    let deadline = Duration::from_secs(config.conference.drain_timeout_secs);
    let left = unit.drained(deadline).await;
    if left > 0 {
        tracing::warn!(
            left,
            "conference drain deadline passed; cutting the remaining calls"
        );
    }
    agent.stop().await;
    drain(&config, running).await;
    tracing::info!("stopped");
    Ok(())
}

fn conference_ports(config: &Config, unit: &iris_conference::ConferenceHandle) -> String {
    match config.conference.single_port {
        Some(_) => unit.media_addr().to_string(),
        None => format!(
            "{}:{}-{}",
            config.conference.announced_ip(),
            config.conference.port_min,
            config.conference.port_max
        ),
    }
}

/// `iris relay`: the relay role alone, with TURN over TLS on the HTTPS port and a small HTTP
/// surface (health, readiness, metrics) for load balancers and Prometheus.
pub async fn relay_only(mut config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    config.roles.relay = true;
    let relay = start_relay(&config).await?;
    let router = Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            get(|| async { axum::Json(serde_json::json!({"status": "ready"})) }),
        )
        .route(
            "/metrics",
            get(move || {
                let body = metrics.as_ref().map(|h| h.render()).unwrap_or_default();
                async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
            }),
        );
    let running = Running {
        shutdown: Shutdown::default(),
        tracker: TaskTracker::new(),
        relay,
        draining: Arc::default(),
    };
    let https = listen(&config, &running, router, tls_material(&config)?).await?;
    print_banner(&config, &https, running.relay.as_deref(), started);
    wait_for_signal().await;
    drain(&config, running).await;
    Ok(())
}

/// The relay's ICE servers, known once the listeners are bound (ports may be ephemeral).
#[derive(Default)]
struct IceSource {
    servers: std::sync::OnceLock<IceServers>,
}

impl IceSource {
    fn configure(
        &self,
        config: &Config,
        relay: &RelayHandle,
        https: &[SocketAddr],
    ) -> anyhow::Result<()> {
        let mut relay_config = relay_config(config)?;
        if relay_config.servers.is_empty() {
            // This process is the relay: advertise the ports it actually listens on.
            let mut tcp_ports: Vec<u16> = relay.tcp_addrs().iter().map(SocketAddr::port).collect();
            tcp_ports.extend(config.http.plain_listen.iter().map(SocketAddr::port));
            tcp_ports.dedup();
            relay_config.servers.push(RelayServer {
                name: relay_config
                    .public_name
                    .clone()
                    .unwrap_or_else(|| config.domain.clone()),
                region: None,
                latitude: None,
                longitude: None,
                udp_port: relay.udp_addrs().first().map_or(0, SocketAddr::port),
                tcp_ports,
                tls_port: config
                    .http
                    .public_port
                    .or_else(|| https.first().map(SocketAddr::port))
                    .unwrap_or(0),
            });
        }
        let servers = IceServers::new(&relay_config)
            .map_err(|e| anyhow::anyhow!("relay ICE servers: {e}"))?;
        let _ = self.servers.set(servers);
        Ok(())
    }
}

impl iris_api::IceServerSource for IceSource {
    fn ice_servers(&self, client_ip: std::net::IpAddr, user: &str) -> Option<serde_json::Value> {
        let servers =
            self.servers
                .get()?
                .ice_servers(client_ip, user, std::time::SystemTime::now());
        serde_json::to_value(servers).ok()
    }
}

/// The relay section with the generated shared secret filled in when none is configured.
fn relay_config(config: &Config) -> anyhow::Result<iris_relay::RelayConfig> {
    let mut relay_config = config.relay.clone();
    if relay_config.shared_secret.is_none() {
        relay_config.shared_secret = Some(secrets::load_or_create(
            &Secret::default(),
            &config.data_dir,
            "turn.key",
        )?);
    }
    Ok(relay_config)
}

async fn start_relay(config: &Config) -> anyhow::Result<Option<Arc<RelayHandle>>> {
    if !config.roles.relay {
        return Ok(None);
    }
    let relay = Relay::start(relay_config(config)?)
        .await
        .map_err(|e| anyhow::anyhow!("relay: {e}"))?;
    let relay = Arc::new(relay);
    let weak = Arc::downgrade(&relay);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tick.tick().await;
            let Some(relay) = weak.upgrade() else { break };
            export_relay_metrics(&relay.counters());
        }
    });
    Ok(Some(relay))
}

fn export_relay_metrics(c: &iris_relay::Counters) {
    metrics::gauge!("iris_relay_allocations").set(c.allocations as f64);
    metrics::counter!("iris_relay_allocations_created_total").absolute(c.allocations_created);
    metrics::counter!("iris_relay_packets_total", "direction" => "to_peer")
        .absolute(c.packets_to_peer);
    metrics::counter!("iris_relay_packets_total", "direction" => "to_client")
        .absolute(c.packets_to_client);
    metrics::counter!("iris_relay_bytes_total", "direction" => "to_peer").absolute(c.bytes_to_peer);
    metrics::counter!("iris_relay_bytes_total", "direction" => "to_client")
        .absolute(c.bytes_to_client);
    metrics::counter!("iris_relay_denied_peers_total").absolute(c.denied_peers);
    metrics::counter!("iris_relay_auth_failures_total").absolute(c.auth_failures);
    metrics::counter!("iris_relay_rate_limited_total").absolute(c.rate_limited);
}

fn turn_route(relay: &Arc<RelayHandle>, transport: Transport) -> Route {
    let relay = relay.clone();
    let handler: StreamHandler = Arc::new(move |stream, info| {
        let (prefix, inner) = stream.into_parts();
        relay.serve_stream_with_prefix(inner, prefix.to_vec(), info.peer, info.local, transport);
        Box::pin(async {})
    });
    Route {
        name: "turn",
        alpn: Some(b"stun.turn"),
        sniff: looks_like_stun,
        handler,
    }
}

type TlsMaterial = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// The configured certificate and key, or a self-signed pair generated on first start.
fn tls_material(config: &Config) -> anyhow::Result<TlsMaterial> {
    let tls_files = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(cert), Some(key)) => tls::TlsFiles { cert: cert.clone(), key: key.clone(), generated: false },
        (None, None) => {
            let files = tls::ensure_self_signed(&config.data_dir.join("tls"), &config.domain)?;
            if files.generated {
                tracing::info!(cert = %files.cert.display(), domain = %config.domain, "generated a self-signed certificate");
            }
            files
        }
        _ => bail!("set both tls.cert_file and tls.key_file, or neither (a self-signed pair is then generated)"),
    };
    Ok(tls::load(&tls_files)?)
}

/// Binds the TLS and plain listeners; returns the TLS addresses actually bound.
async fn listen(
    config: &Config,
    running: &Running,
    router: Router,
    (certs, key): TlsMaterial,
) -> anyhow::Result<Vec<SocketAddr>> {
    let limiter = ConnLimiter::new(
        config.http.max_connections_per_ip,
        config.http.max_connections,
    );
    let turn_routes = |transport| {
        running
            .relay
            .iter()
            .map(|r| turn_route(r, transport))
            .collect::<Vec<_>>()
    };

    let https_dispatch = Arc::new(Dispatch {
        routes: turn_routes(Transport::Tls),
        default: http_handler(router, running.shutdown.subscribe()),
        default_name: "http",
    });
    let acceptor = TlsAcceptor::from(tls::server_config(
        certs,
        key,
        https_dispatch.alpn_protocols(),
    )?);
    let mut bound = Vec::new();
    for addr in &config.http.listen {
        let listener = bind(*addr).await?;
        bound.push(listener.local_addr().unwrap_or(*addr));
        let cfg = listener_config("https", &limiter);
        running.tracker.spawn(iris_net::serve(
            listener,
            Some(acceptor.clone()),
            https_dispatch.clone(),
            cfg,
            running.shutdown.subscribe(),
            running.tracker.clone(),
        ));
    }
    let https_port = config
        .http
        .public_port
        .or_else(|| bound.first().map(SocketAddr::port))
        .unwrap_or(443);
    let plain_dispatch = Arc::new(Dispatch {
        routes: turn_routes(Transport::Tcp),
        default: http_handler(redirect_router(https_port), running.shutdown.subscribe()),
        default_name: "redirect",
    });
    for addr in &config.http.plain_listen {
        let listener = bind(*addr).await?;
        running.tracker.spawn(iris_net::serve(
            listener,
            None,
            plain_dispatch.clone(),
            listener_config("http", &limiter),
            running.shutdown.subscribe(),
            running.tracker.clone(),
        ));
    }
    Ok(bound)
}

fn listener_config(name: &'static str, limiter: &ConnLimiter) -> ListenerConfig {
    ListenerConfig {
        name,
        handshake_timeout: Duration::from_secs(10),
        sniff_timeout: Duration::from_secs(10),
        limiter: limiter.clone(),
    }
}

async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            anyhow::anyhow!(
                "cannot listen on {addr}: permission denied. Ports below 1024 need root or \
                 CAP_NET_BIND_SERVICE (`setcap cap_net_bind_service=+ep $(which iris)`); for a \
                 try-out run `iris serve --dev`, or set http.listen / http.plain_listen."
            )
        } else if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!("cannot listen on {addr}: the address is in use by another program")
        } else {
            anyhow::anyhow!("cannot listen on {addr}: {e}")
        }
    })
}

/// Plain HTTP: everything is redirected to HTTPS (TURN over TCP is dispatched before this).
fn redirect_router(https_port: u16) -> Router {
    Router::new().fallback(move |req: Request| async move {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| {
                h.rsplit_once(':')
                    .filter(|(_, p)| p.parse::<u16>().is_ok())
                    .map_or(h, |(name, _)| name)
            })
            .unwrap_or("localhost")
            .to_owned();
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return (StatusCode::BAD_REQUEST, "bad Host header").into_response();
        }
        let port = if https_port == 443 {
            String::new()
        } else {
            format!(":{https_port}")
        };
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        match format!("https://{host}{port}{path}").parse::<Uri>() {
            Ok(uri) => Redirect::permanent(&uri.to_string()).into_response(),
            Err(_) => (StatusCode::BAD_REQUEST, "bad request target").into_response(),
        }
    })
}

fn print_banner(
    config: &Config,
    https: &[SocketAddr],
    relay: Option<&RelayHandle>,
    started: Instant,
) {
    let host = if config.domain == "localhost" || https.iter().all(|a| a.ip().is_loopback()) {
        "localhost".to_owned()
    } else {
        config.domain.clone()
    };
    let port = config
        .http
        .public_port
        .or_else(|| https.first().map(SocketAddr::port))
        .unwrap_or(443);
    let base = if port == 443 {
        format!("https://{host}")
    } else {
        format!("https://{host}:{port}")
    };
    println!(
        "Iris {} is running (ready in {} ms)",
        env!("CARGO_PKG_VERSION"),
        started.elapsed().as_millis()
    );
    println!(
        "  web app and REST API  {base}/   (listening on {})",
        join(https)
    );
    if let Some(relay) = relay {
        println!(
            "  STUN/TURN relay       udp {}  tcp {}  tls {}",
            join(relay.udp_addrs()),
            join(relay.tcp_addrs()),
            join(https)
        );
    }
    if !config.http.plain_listen.is_empty() {
        println!(
            "  plain TCP             {} (TURN over TCP, HTTP redirected to HTTPS)",
            join(&config.http.plain_listen)
        );
    }
    println!("  health / metrics      {base}/healthz  {base}/readyz  {base}/metrics");
    println!("  data                  {}", config.data_dir.display());
    let data_flag = format!(" --data-dir {}", config.data_dir.display());
    let domain = &config.domain;
    println!("First steps:");
    println!("  iris user add admin@{domain} --password 'choose-a-password' --admin{data_flag}");
    println!(
        "  curl -k {base}/api/v1/auth/login -H 'content-type: application/json' \
         -d '{{\"login\":\"admin@{domain}\",\"password\":\"choose-a-password\"}}'"
    );
    println!("Stop with Ctrl-C (in-flight requests finish first).");
}

fn join(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the server");
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn drain(config: &Config, running: Running) {
    tracing::info!("shutting down: no new connections; in-flight requests finish (a second signal forces the stop)");
    running.draining.store(true, Ordering::Relaxed);
    running.shutdown.trigger();
    tokio::spawn(async {
        wait_for_signal().await;
        eprintln!("second signal: stopping now");
        std::process::exit(130);
    });
    running.tracker.close();
    let deadline = Duration::from_secs(config.http.drain_timeout_secs);
    if tokio::time::timeout(deadline, running.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = deadline.as_secs(),
            "drain deadline reached; closing remaining connections"
        );
    }
    if let Some(relay) = running.relay {
        match Arc::try_unwrap(relay) {
            Ok(relay) => relay.shutdown().await,
            Err(_) => tracing::debug!("relay still referenced; its sockets close with the process"),
        }
    }
}
