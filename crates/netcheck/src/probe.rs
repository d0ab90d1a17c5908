//! The probes and their order: DNS, TCP/TLS/HTTPS/WebSocket (direct and through the proxy), login and ICE servers, STUN, TURN round trips per transport, quality; reports each result as it completes.
use crate::connect::{self, Proxy, Stream, Trust};
use crate::http;
use crate::measure::{self, Plan, Quality};
use crate::report::{PathResult, ProbeResult, Report};
use crate::turn_client::{Credentials, Link, Session};
use crate::verdict::{self, MediaPath};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Tunnels one client holds at once through a proxy (R-27): 1 WSS + 6 HTTPS + 1 media.
pub const PARALLEL_TUNNELS: usize = 8;

/// How to log in to get TURN credentials.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    #[default]
    None,
    Password {
        login: String,
        password: String,
    },
    Token(String),
}

/// What to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// `https://host[:port]` or `host[:port]`.
    pub server: String,
    pub proxy: Option<Proxy>,
    pub trust: Trust,
    pub auth: Auth,
    /// Overrides the relay's UDP port from the ICE servers (non-standard deployments, tests).
    pub udp_port: Option<u16>,
    /// Deadline of each connection attempt or STUN transaction.
    pub timeout: Duration,
    /// Skip the bitrate ramp and use fewer echo probes.
    pub quick: bool,
}

/// Receives each result as soon as it is known (live progress).
pub trait Progress {
    fn probe(&mut self, result: &ProbeResult);
    fn path(&mut self, result: &PathResult);
}

/// The server's name and HTTPS port.
fn target(server: &str) -> Result<(String, u16), String> {
    let rest = server.strip_prefix("https://").unwrap_or(server);
    if rest.starts_with("http://") {
        return Err("the server URL must be https://".into());
    }
    let hostport = rest.split('/').next().unwrap_or(rest);
    connect::split_host_port(hostport, 443)
}

struct Ctx<'a> {
    opts: &'a Options,
    host: String,
    port: u16,
    progress: &'a mut dyn Progress,
    report: Report,
}

impl Ctx<'_> {
    fn record(
        &mut self,
        name: &str,
        via: &str,
        started: Instant,
        result: Result<String, String>,
    ) -> bool {
        let ok = result.is_ok();
        let r = ProbeResult {
            name: name.to_owned(),
            via: via.to_owned(),
            ok,
            detail: result.unwrap_or_else(|e| e),
            ms: (started.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0,
        };
        self.progress.probe(&r);
        self.report.probes.push(r);
        ok
    }

    fn proxy_for(&self, via_proxy: bool) -> Option<&Proxy> {
        if via_proxy {
            self.opts.proxy.as_ref()
        } else {
            None
        }
    }

    async fn tls_stream(
        &self,
        host: &str,
        port: u16,
        via_proxy: bool,
        alpn: &[&[u8]],
    ) -> Result<Stream, String> {
        let tcp = connect::tcp(host, port, self.proxy_for(via_proxy), self.opts.timeout)
            .await
            .map_err(|e| e.to_string())?;
        let config = connect::tls_config(&self.opts.trust, alpn)?;
        connect::tls(tcp, host, config, self.opts.timeout)
            .await
            .map_err(|e| e.to_string())
    }

    /// One HTTPS request to the service on `via_proxy`'s path.
    async fn https(
        &self,
        via_proxy: bool,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Result<http::Response, String> {
        let s = self
            .tls_stream(&self.host, self.port, via_proxy, &[b"http/1.1"])
            .await?;
        let hostport = if self.port == 443 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        tokio::time::timeout(
            self.opts.timeout * 3,
            http::request(s, method, &hostport, path, headers, body),
        )
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())
    }

    /// TCP, TLS, HTTPS and WebSocket on one path; true if signalling works on it.
    async fn signalling(&mut self, via_proxy: bool) -> bool {
        let via = if via_proxy { "proxy" } else { "direct" };
        let (host, port) = (self.host.clone(), self.port);
        let t = Instant::now();
        let tcp = connect::tcp(&host, port, self.proxy_for(via_proxy), self.opts.timeout)
            .await
            .map(|_| format!("{host}:{port} connected"))
            .map_err(|e| e.to_string());
        if !self.record(&format!("TCP {port}"), via, t, tcp) {
            return false;
        }
        let t = Instant::now();
        let tls = self
            .tls_stream(&host, port, via_proxy, &[b"http/1.1"])
            .await
            .map(|_| "handshake ok, certificate accepted".to_owned());
        if !self.record(&format!("TLS {port}"), via, t, tls) {
            return false;
        }
        let t = Instant::now();
        let https = match self.https(via_proxy, "GET", "/healthz", &[], None).await {
            Ok(r) if r.status == 200 => Ok("GET /healthz 200".to_owned()),
            Ok(r) => Err(format!("GET /healthz answered {}", r.status)),
            Err(e) => Err(e),
        };
        if !self.record("HTTPS", via, t, https) {
            return false;
        }
        let t = Instant::now();
        let headers = [
            ("Connection", "Upgrade".to_owned()),
            ("Upgrade", "websocket".to_owned()),
            ("Sec-WebSocket-Version", "13".to_owned()),
            ("Sec-WebSocket-Key", "aXJpcy1uZXRjaGVjay0xMg==".to_owned()),
            ("Sec-WebSocket-Protocol", "xmpp".to_owned()),
        ];
        let ws = match self
            .https(via_proxy, "GET", "/xmpp-websocket", &headers, None)
            .await
        {
            Ok(r) if r.status == 101 => Ok("upgrade to WebSocket (101)".to_owned()),
            Ok(r) => Err(format!("upgrade refused: HTTP {}", r.status)),
            Err(e) => Err(e),
        };
        self.report.findings.websocket |= ws.is_ok();
        let ok = self.record("WebSocket", via, t, ws);
        if ok && via_proxy {
            self.proxy_capacity().await;
        }
        ok
    }

    /// R-27: a client holds one WSS tunnel, parallel HTTPS and one tunnel per relayed media
    /// stream at once; checks the proxy lets [`PARALLEL_TUNNELS`] TLS tunnels open together.
    async fn proxy_capacity(&mut self) {
        let t = Instant::now();
        let opens = (0..PARALLEL_TUNNELS)
            .map(|_| self.tls_stream(&self.host, self.port, true, &[b"http/1.1"]));
        let results = futures_util::future::join_all(opens).await;
        let open = results.iter().filter(|r| r.is_ok()).count();
        self.report.findings.proxy_tunnels = Some((open, PARALLEL_TUNNELS));
        let r = if open == PARALLEL_TUNNELS {
            Ok(format!(
                "{open} TLS tunnels open at once (1 WSS + 6 HTTPS + 1 media)"
            ))
        } else {
            Err(format!(
                "only {open} of {PARALLEL_TUNNELS} parallel tunnels opened"
            ))
        };
        self.record("parallel", "proxy", t, r);
    }

    /// Login (or token) then `GET /api/v1/ice-servers`: TURN URLs and credentials.
    async fn ice_servers(&mut self, via_proxy: bool) -> Option<(Vec<String>, Credentials)> {
        let via = if via_proxy { "proxy" } else { "direct" };
        let t = Instant::now();
        let token = match self.opts.auth.clone() {
            Auth::None => return None,
            Auth::Token(t) => t,
            Auth::Password { login, password } => {
                let body = serde_json::json!({ "login": login, "password": password }).to_string();
                let headers = [("Content-Type", "application/json".to_owned())];
                let r = self
                    .https(
                        via_proxy,
                        "POST",
                        "/api/v1/auth/login",
                        &headers,
                        Some(body.as_bytes()),
                    )
                    .await;
                let token = match r {
                    Ok(r) if r.status == 200 => {
                        serde_json::from_slice::<serde_json::Value>(&r.body)
                            .ok()
                            .and_then(|v| v["access_token"].as_str().map(str::to_owned))
                            .ok_or_else(|| "login answer has no access_token".to_owned())
                    }
                    Ok(r) => Err(format!("login refused: HTTP {}", r.status)),
                    Err(e) => Err(e),
                };
                match token {
                    Ok(t) => t,
                    Err(e) => {
                        self.record("login", via, t, Err(e));
                        return None;
                    }
                }
            }
        };
        let headers = [("Authorization", format!("Bearer {token}"))];
        let r = self
            .https(via_proxy, "GET", "/api/v1/ice-servers", &headers, None)
            .await;
        let parsed = match r {
            Ok(r) if r.status == 200 => parse_ice_servers(&r.body),
            Ok(r) => Err(format!("GET /api/v1/ice-servers answered {}", r.status)),
            Err(e) => Err(e),
        };
        match parsed {
            Ok((urls, creds, relays)) => {
                self.record(
                    "ICE servers",
                    via,
                    t,
                    Ok(format!("{relays} relay(s); nearest: {}", urls.join(" "))),
                );
                Some((urls, creds))
            }
            Err(e) => {
                self.record("ICE servers", via, t, Err(e));
                None
            }
        }
    }

    /// Two allocations on `path` that exchange data; the first working path is measured fully.
    async fn turn_path(
        &mut self,
        path: MediaPath,
        relay: &str,
        port: u16,
        creds: &Credentials,
        full: bool,
    ) -> bool {
        let t = Instant::now();
        let plan = if full && !self.opts.quick {
            Plan::FULL
        } else if full {
            Plan {
                echoes: 50,
                ..Plan::QUICK
            }
        } else {
            Plan::QUICK
        };
        let result = self.turn_round_trip(path, relay, port, creds, plan).await;
        let (ok, detail, quality) = match result {
            Ok(q) if q.received > 0 => (
                true,
                format!("{}/{} echoes back", q.received, q.sent),
                Some(q),
            ),
            Ok(q) => (
                false,
                format!("allocations made but 0/{} packets came back", q.sent),
                None,
            ),
            Err(e) => (false, e, None),
        };
        let r = PathResult {
            path,
            port,
            ok,
            detail,
            ms: (t.elapsed().as_secs_f64() * 1000.0).round(),
            quality: quality.clone(),
        };
        self.progress.path(&r);
        self.report.paths.push(r);
        self.report.findings.paths.push((path, port, ok));
        if ok && full {
            self.report.findings.quality = quality;
        }
        ok
    }

    async fn link(&self, path: MediaPath, relay: &str, port: u16) -> Result<Link, String> {
        match path {
            MediaPath::Udp => {
                let addr = resolve(relay, port, self.opts.timeout).await?;
                Link::udp(addr).await.map_err(|e| e.to_string())
            }
            MediaPath::Tcp | MediaPath::ProxyTcp => {
                let proxy = self.proxy_for(path == MediaPath::ProxyTcp);
                connect::tcp(relay, port, proxy, self.opts.timeout)
                    .await
                    .map(Link::stream)
                    .map_err(|e| e.to_string())
            }
            MediaPath::Tls | MediaPath::ProxyTls => self
                .tls_stream(relay, port, path == MediaPath::ProxyTls, &[b"stun.turn"])
                .await
                .map(Link::stream),
        }
    }

    async fn turn_round_trip(
        &self,
        path: MediaPath,
        relay: &str,
        port: u16,
        creds: &Credentials,
        plan: Plan,
    ) -> Result<Quality, String> {
        let timeout = self.opts.timeout;
        let mut a = Session::new(
            self.link(path, relay, port).await?,
            Some(creds.clone()),
            timeout,
        );
        let (relayed_a, _) = a.allocate().await.map_err(|e| format!("Allocate: {e}"))?;
        let mut b = Session::new(
            self.link(path, relay, port).await?,
            Some(creds.clone()),
            timeout,
        );
        let (relayed_b, _) = match b.allocate().await {
            Ok(r) => r,
            Err(e) => {
                a.release().await;
                return Err(format!("second Allocate: {e}"));
            }
        };
        let bound = async {
            a.channel_bind(relayed_b).await?;
            b.channel_bind(relayed_a).await
        }
        .await;
        let q = match bound {
            Ok(()) => Ok(measure::bounce(&mut a.link, &mut b.link, plan).await),
            Err(e) => Err(format!("ChannelBind: {e}")),
        };
        // Stream allocations end with their connection; UDP ones are released explicitly.
        if path == MediaPath::Udp {
            a.release().await;
            b.release().await;
        }
        q
    }
}

async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<SocketAddr, String> {
    let found = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| format!("resolving {host}: timed out"))?
        .map_err(|e| format!("resolving {host}: {e}"))?;
    let all: Vec<SocketAddr> = found.collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| format!("{host}: no address"))
}

/// URLs of the nearest relay, its credentials, and the number of relays given (R-9).
fn parse_ice_servers(body: &[u8]) -> Result<(Vec<String>, Credentials, usize), String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("ICE servers: {e}"))?;
    let list = v.as_array().ok_or("ICE servers: not a list")?;
    let turn: Vec<&serde_json::Value> = list
        .iter()
        .filter(|e| e.get("username").is_some())
        .collect();
    let first = turn.first().ok_or("ICE servers: no TURN entry")?;
    let urls: Vec<String> = match &first["urls"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|u| u.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let creds = Credentials {
        username: first["username"].as_str().unwrap_or_default().to_owned(),
        password: first["credential"].as_str().unwrap_or_default().to_owned(),
    };
    Ok((urls, creds, turn.len()))
}

/// A parsed `turn:`/`turns:` URL: (tls, host, port, transport).
fn parse_turn_url(url: &str) -> Option<(bool, String, u16, String)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("turns:") {
        (true, r)
    } else {
        (false, url.strip_prefix("turn:")?)
    };
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    let transport = query
        .strip_prefix("transport=")
        .unwrap_or(if tls { "tcp" } else { "udp" })
        .to_owned();
    let (host, port) = connect::split_host_port(hostport, if tls { 443 } else { 3478 }).ok()?;
    Some((tls, host, port, transport))
}

/// Runs every probe and decides. Never fails: what cannot be checked is reported as such.
pub async fn run(opts: &Options, progress: &mut dyn Progress) -> Report {
    let (host, port) = match target(&opts.server) {
        Ok(t) => t,
        Err(e) => {
            let mut report = Report::new(&opts.server);
            report.probes.push(ProbeResult {
                name: "server".into(),
                via: "-".into(),
                ok: false,
                detail: e,
                ms: 0.0,
            });
            report.verdict = verdict::decide(&report.findings);
            return report;
        }
    };
    let mut ctx = Ctx {
        opts,
        host: host.clone(),
        port,
        progress,
        report: Report::new(&opts.server),
    };
    ctx.report.findings.service = host.clone();
    ctx.report.findings.https_port = port;
    ctx.report.findings.proxy = opts.proxy.is_some();

    let t = Instant::now();
    let dns = resolve(&host, port, opts.timeout)
        .await
        .map(|a| format!("{host} → {}", a.ip()));
    let dns_ok = ctx.record("DNS", "direct", t, dns);
    // Through a proxy, the proxy resolves: a client without DNS may still work.
    ctx.report.findings.dns = dns_ok || opts.proxy.is_some();

    let direct = if dns_ok {
        ctx.signalling(false).await
    } else {
        false
    };
    ctx.report.findings.https_direct = Some(direct);
    let mut via_proxy_ok = false;
    if opts.proxy.is_some() {
        via_proxy_ok = ctx.signalling(true).await;
        ctx.report.findings.https_proxy = Some(via_proxy_ok);
    }
    let api_via_proxy = !direct && via_proxy_ok;
    let ice = if direct || via_proxy_ok {
        ctx.ice_servers(api_via_proxy).await
    } else {
        None
    };

    // Relay ports: from the ICE servers, else the SPEC's defaults.
    let mut relay = host.clone();
    let mut udp_port = 3478;
    let mut tcp_ports: Vec<u16> = Vec::new();
    let mut tls_port = port;
    if let Some((urls, _)) = &ice {
        for (tls, h, p, transport) in urls.iter().filter_map(|u| parse_turn_url(u)) {
            relay = h;
            match (tls, transport.as_str()) {
                (true, _) => tls_port = p,
                (false, "udp") => udp_port = p,
                (false, _) => tcp_ports.push(p),
            }
        }
    }
    if let Some(p) = opts.udp_port {
        udp_port = p;
    }
    tcp_ports.sort_by_key(|p| std::cmp::Reverse(*p == 80));
    tcp_ports.dedup();
    {
        let f = &mut ctx.report.findings;
        f.relay = relay.clone();
        f.udp_port = udp_port;
        f.tcp_ports = tcp_ports.clone();
        f.tls_port = tls_port;
    }

    // TCP 80 reachability (TURN over TCP for proxies that break TLS tunnels, R-8).
    if dns_ok {
        let t = Instant::now();
        let p80 = tcp_ports.first().copied().unwrap_or(80);
        let r = connect::tcp(&relay, p80, None, opts.timeout)
            .await
            .map(|_| format!("{relay}:{p80} connected"))
            .map_err(|e| e.to_string());
        ctx.record(&format!("TCP {p80}"), "direct", t, r);
    }

    // STUN binding on UDP 3478 works without credentials.
    if dns_ok {
        let t = Instant::now();
        let stun = match resolve(&relay, udp_port, opts.timeout).await {
            Ok(addr) => match Link::udp(addr).await {
                Ok(link) => Session::new(link, None, opts.timeout)
                    .binding()
                    .await
                    .map(|m| format!("reflexive address {m}"))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e),
        };
        let ok = ctx.record(&format!("STUN UDP {udp_port}"), "direct", t, stun);
        ctx.report.findings.stun_udp = Some(ok);
    }

    if let Some((_, creds)) = ice {
        ctx.report.findings.credentials = true;
        let mut measured = false;
        let mut plan: Vec<(MediaPath, u16)> = Vec::new();
        if dns_ok {
            plan.push((MediaPath::Udp, udp_port));
            plan.push((MediaPath::Tls, tls_port));
            plan.extend(tcp_ports.iter().map(|p| (MediaPath::Tcp, *p)));
        }
        if opts.proxy.is_some() {
            plan.push((MediaPath::ProxyTls, tls_port));
            plan.extend(tcp_ports.iter().map(|p| (MediaPath::ProxyTcp, *p)));
        }
        let mut proxy_tcp_ok = false;
        for (path, p) in plan {
            // Through the proxy one TCP port is enough (80 is tried first).
            if path == MediaPath::ProxyTcp && proxy_tcp_ok {
                continue;
            }
            let ok = ctx.turn_path(path, &relay, p, &creds, !measured).await;
            proxy_tcp_ok |= ok && path == MediaPath::ProxyTcp;
            measured |= ok;
        }
    }
    ctx.report.verdict = verdict::decide(&ctx.report.findings);
    ctx.report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7065_turn_urls_parse() {
        assert_eq!(
            parse_turn_url("turn:iris.lab:3478?transport=udp"),
            Some((false, "iris.lab".into(), 3478, "udp".into()))
        );
        assert_eq!(
            parse_turn_url("turns:iris.lab:443?transport=tcp"),
            Some((true, "iris.lab".into(), 443, "tcp".into()))
        );
        assert_eq!(
            parse_turn_url("turn:[::1]:80?transport=tcp"),
            Some((false, "::1".into(), 80, "tcp".into()))
        );
        assert_eq!(parse_turn_url("stun:x:1"), None);
    }

    #[test]
    fn targets_accept_urls_and_names() {
        assert_eq!(
            target("https://chat.example.com/").ok(),
            Some(("chat.example.com".into(), 443))
        );
        assert_eq!(
            target("127.0.0.1:8443").ok(),
            Some(("127.0.0.1".into(), 8443))
        );
        assert!(target("http://x").is_err());
    }

    #[test]
    fn ice_server_lists_parse() {
        let body = br#"[{"urls":["stun:r:3478"]},{"urls":["turn:r:3478?transport=udp","turns:r:443?transport=tcp"],"username":"1:u","credential":"c"},{"urls":"turn:s:3478","username":"1:u","credential":"c"}]"#;
        let (urls, creds, n) = parse_ice_servers(body).expect("parses");
        assert_eq!(urls.len(), 2);
        assert_eq!(creds.username, "1:u");
        assert_eq!(n, 2);
        assert!(parse_ice_servers(b"{}").is_err());
    }
}
