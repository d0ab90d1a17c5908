//! From probe results to a verdict: which deployment profiles (SPEC §4) work from this network, what exactly to open otherwise, and the exit code; pure, no I/O.
use crate::measure::Quality;
use serde::Serialize;

/// A way media can reach the relay, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaPath {
    /// TURN over UDP (3478).
    Udp,
    /// TURN over TLS on the HTTPS port (443).
    Tls,
    /// TURN over plain TCP (80, 3478).
    Tcp,
    /// TURN over TLS tunnelled with CONNECT through the proxy.
    ProxyTls,
    /// TURN over TCP tunnelled with CONNECT through the proxy (port 80).
    ProxyTcp,
}

impl MediaPath {
    pub fn name(self) -> &'static str {
        match self {
            MediaPath::Udp => "TURN over UDP",
            MediaPath::Tls => "TURN over TLS",
            MediaPath::Tcp => "TURN over TCP",
            MediaPath::ProxyTls => "TURN over TLS through the proxy",
            MediaPath::ProxyTcp => "TURN over TCP through the proxy",
        }
    }
}

/// What the probes found, as the verdict needs it.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    pub service: String,
    pub relay: String,
    pub https_port: u16,
    pub udp_port: u16,
    pub tcp_ports: Vec<u16>,
    pub tls_port: u16,
    pub dns: bool,
    /// HTTPS + TLS directly (None: not tried).
    pub https_direct: Option<bool>,
    pub https_proxy: Option<bool>,
    pub websocket: bool,
    /// TURN credentials were obtained (login + ice-servers).
    pub credentials: bool,
    pub stun_udp: Option<bool>,
    /// Each media path tried (with its port) and whether data went both ways.
    pub paths: Vec<(MediaPath, u16, bool)>,
    pub quality: Option<Quality>,
    pub proxy: bool,
    /// Parallel tunnels the proxy let one client open, of those tried.
    pub proxy_tunnels: Option<(usize, usize)>,
}

impl Findings {
    fn works(&self, path: MediaPath) -> bool {
        self.paths.iter().any(|(p, _, ok)| *p == path && *ok)
    }
    fn port_of(&self, path: MediaPath) -> u16 {
        self.paths
            .iter()
            .find(|(p, _, ok)| *p == path && *ok)
            .map_or(0, |(_, port, _)| *port)
    }
    fn failed(&self, path: MediaPath) -> Vec<u16> {
        self.paths
            .iter()
            .filter(|(p, _, ok)| *p == path && !*ok)
            .map(|(_, port, _)| *port)
            .collect()
    }
}

/// The exit code of `iris netcheck` (documented in its `--help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictCode {
    /// 0: everything works; media over UDP within the voice limits.
    Ok,
    /// 1: calls work but degraded: media only over TCP/TLS (or a proxy), or beyond SPEC §7 limits.
    Degraded,
    /// 2: signalling works but no media path reaches the relay: calls fail.
    NoMedia,
    /// 3: the service is unreachable (DNS, HTTPS or the WebSocket fail).
    Unreachable,
    /// 4: reachability checked, media not (no credentials or login refused).
    Incomplete,
}

impl VerdictCode {
    pub fn exit_code(self) -> u8 {
        match self {
            VerdictCode::Ok => 0,
            VerdictCode::Degraded => 1,
            VerdictCode::NoMedia => 2,
            VerdictCode::Unreachable => 3,
            VerdictCode::Incomplete => 4,
        }
    }
}

/// Whether a deployment profile works from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Works {
    Yes,
    Degraded,
    No,
    NotChecked,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProfileVerdict {
    pub profile: &'static str,
    pub works: Works,
    pub why: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    pub code: VerdictCode,
    pub summary: String,
    pub profiles: Vec<ProfileVerdict>,
    /// What to open, one flow per line, most important first.
    pub open: Vec<String>,
    /// Further observations.
    pub notes: Vec<String>,
}

/// Decides.
pub fn decide(f: &Findings) -> Verdict {
    let mut open = Vec::new();
    let mut notes = Vec::new();
    let signalling =
        f.dns && (f.https_direct == Some(true) || f.https_proxy == Some(true)) && f.websocket;
    if !f.dns {
        open.push(format!(
            "DNS: clients must resolve {} (UDP/TCP 53 to your resolver)",
            f.service
        ));
    }
    if f.https_direct == Some(false) && f.https_proxy != Some(true) {
        open.push(format!(
            "TCP {} to {} (HTTPS, WebSocket, TURN over TLS; R-2, R-3, R-8)",
            f.https_port, f.service
        ));
    }
    if f.https_proxy == Some(false) {
        open.push(format!(
            "on the proxy: CONNECT to {}:{} (R-4)",
            f.service, f.https_port
        ));
    }
    if (f.https_direct == Some(true) || f.https_proxy == Some(true)) && !f.websocket {
        open.push(format!("the WebSocket upgrade on https://{}/xmpp-websocket through proxies and inspection (R-3, R-4)", f.service));
    }
    let direct = [MediaPath::Udp, MediaPath::Tls, MediaPath::Tcp];
    let via_proxy = [MediaPath::ProxyTls, MediaPath::ProxyTcp];
    let best = direct
        .iter()
        .chain(via_proxy.iter())
        .copied()
        .find(|p| f.works(*p));
    if f.credentials {
        if !f.works(MediaPath::Udp) {
            open.push(format!(
                "UDP {} to {} (relay media; best quality, R-8)",
                f.udp_port, f.relay
            ));
        }
        if !f.works(MediaPath::Tls) && !f.failed(MediaPath::Tls).is_empty() {
            if f.https_direct == Some(true) {
                open.push(format!("TURN over TLS on TCP {} to {}: exempt it from TLS/deep-packet inspection (R-28)", f.tls_port, f.relay));
            } else if !f.proxy {
                open.push(format!(
                    "TCP {} to {} (TURN over TLS when UDP is blocked, R-12)",
                    f.tls_port, f.relay
                ));
            }
        }
        if f.proxy {
            if !f.works(MediaPath::ProxyTls) {
                open.push(format!(
                    "on the proxy: CONNECT to {}:{} (TURN over TLS through the proxy, R-8)",
                    f.relay, f.tls_port
                ));
            }
            if !f.works(MediaPath::ProxyTcp) {
                for port in f.failed(MediaPath::ProxyTcp) {
                    notes.push(format!("the proxy refuses CONNECT to {}:{port} (TURN over TCP, the fallback for proxies that break TLS tunnels, R-8)", f.relay));
                }
            }
        }
        for port in f.failed(MediaPath::Tcp) {
            notes.push(format!(
                "TCP {port} to {} is closed (TURN over TCP; optional fallback)",
                f.relay
            ));
        }
    }
    if f.stun_udp == Some(false) && f.credentials && f.works(MediaPath::Udp) {
        notes.push("STUN binding failed although TURN over UDP works".into());
    }
    if let Some((open, tried)) = f.proxy_tunnels.filter(|(o, t)| o < t) {
        notes.push(format!("the proxy allowed only {open} of {tried} parallel tunnels per client: size it for one WSS + parallel HTTPS + one tunnel per media stream (R-27)"));
    }
    let quality_problems = f
        .quality
        .as_ref()
        .map(Quality::problems)
        .unwrap_or_default();
    if !quality_problems.is_empty() {
        notes.push(format!(
            "beyond SPEC §7 limits: {}",
            quality_problems.join(", ")
        ));
    }

    let (code, summary) = if !signalling {
        let what = if !f.dns {
            "DNS fails"
        } else if !f.websocket && (f.https_direct == Some(true) || f.https_proxy == Some(true)) {
            "the WebSocket upgrade fails"
        } else {
            "HTTPS fails"
        };
        (
            VerdictCode::Unreachable,
            format!("Iris is unreachable from here: {what} — nothing will work"),
        )
    } else if !f.credentials {
        (
            VerdictCode::Incomplete,
            "Signalling works; media not checked (give --user or --token to test the relay)"
                .to_owned(),
        )
    } else {
        match best {
            None => (VerdictCode::NoMedia, "No path to the relay — messaging works but calls will fail".to_owned()),
            Some(MediaPath::Udp) if quality_problems.is_empty() => (VerdictCode::Ok, format!("All good — calls use UDP {} to the relay", f.udp_port)),
            Some(MediaPath::Udp) => (VerdictCode::Degraded, format!("Calls work over UDP but quality is poor: {}", quality_problems.join(", "))),
            Some(MediaPath::Tls) => (VerdictCode::Degraded, format!("UDP blocked — calls will use TURN over TLS {}; expect higher latency under loss", f.tls_port)),
            Some(MediaPath::Tcp) => (VerdictCode::Degraded, format!("UDP and TLS blocked — calls will use TURN over TCP {}; expect higher latency under loss", f.port_of(MediaPath::Tcp))),
            Some(p) => (VerdictCode::Degraded, format!("No direct outbound traffic — calls will use {} {}; expect higher latency under loss", p.name(), f.port_of(p))),
        }
    };

    let media_only_tcp = best.is_some() && best != Some(MediaPath::Udp);
    let collab = match (signalling, f.credentials, best) {
        (false, _, _) => (Works::No, "signalling (TCP 443) fails".to_owned()),
        (true, false, _) => (Works::NotChecked, "media not checked".to_owned()),
        (true, true, None) => (Works::No, "no media path".to_owned()),
        (true, true, Some(p)) if media_only_tcp => {
            (Works::Degraded, format!("media via {}", p.name()))
        }
        (true, true, Some(_)) if !quality_problems.is_empty() => {
            (Works::Degraded, quality_problems.join(", "))
        }
        (true, true, Some(_)) => (Works::Yes, "HTTPS/WSS 443 and UDP 3478".to_owned()),
    };
    // A gateway sends media over UDP 3478, or through a proxy on TCP 80 / TLS 443.
    let gateway_fallback = f.works(MediaPath::ProxyTcp)
        || f.works(MediaPath::ProxyTls)
        || f.works(MediaPath::Tcp)
        || f.works(MediaPath::Tls);
    let hybrid = match collab.0 {
        Works::No | Works::NotChecked => (collab.0, "as collaboration".to_owned()),
        _ if f.works(MediaPath::Udp) => (Works::Yes, "gateway: 443 and UDP 3478".to_owned()),
        _ if gateway_fallback => (
            Works::Degraded,
            "gateway media must go through TCP 80 / TLS 443 (R-16)".to_owned(),
        ),
        _ => (Works::No, "gateway has no media path".to_owned()),
    };
    let profiles = vec![
        ProfileVerdict {
            profile: "collaboration",
            works: collab.0,
            why: collab.1,
        },
        ProfileVerdict {
            profile: "hybrid",
            works: hybrid.0,
            why: hybrid.1,
        },
        ProfileVerdict {
            profile: "hub",
            works: Works::NotChecked,
            why: "SIP-TLS 5061 and UDP 30000-44999 to the cloud PBX: no hub in this deployment"
                .to_owned(),
        },
    ];
    Verdict {
        code,
        summary,
        profiles,
        open,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Findings {
        Findings {
            service: "iris.lab".into(),
            relay: "iris.lab".into(),
            https_port: 443,
            udp_port: 3478,
            tcp_ports: vec![80],
            tls_port: 443,
            dns: true,
            https_direct: Some(true),
            websocket: true,
            credentials: true,
            stun_udp: Some(true),
            ..Findings::default()
        }
    }

    #[test]
    fn lab_s1_everything_open_is_ok() {
        let mut f = base();
        f.paths = vec![
            (MediaPath::Udp, 3478, true),
            (MediaPath::Tls, 443, true),
            (MediaPath::Tcp, 80, true),
        ];
        let v = decide(&f);
        assert_eq!(v.code, VerdictCode::Ok, "{v:?}");
        assert!(v.open.is_empty(), "{v:?}");
        assert_eq!(v.profiles[0].works, Works::Yes);
    }

    #[test]
    fn lab_s4_no_udp_uses_tls_443() {
        let mut f = base();
        f.stun_udp = Some(false);
        f.paths = vec![
            (MediaPath::Udp, 3478, false),
            (MediaPath::Tls, 443, true),
            (MediaPath::Tcp, 80, true),
        ];
        let v = decide(&f);
        assert_eq!(v.code, VerdictCode::Degraded);
        assert_eq!(
            v.summary,
            "UDP blocked — calls will use TURN over TLS 443; expect higher latency under loss"
        );
        assert!(
            v.open.iter().any(|o| o.starts_with("UDP 3478 to iris.lab")),
            "{v:?}"
        );
        assert_eq!(v.profiles[0].works, Works::Degraded);
    }

    #[test]
    fn lab_s5_proxy_only() {
        let mut f = base();
        f.proxy = true;
        f.https_direct = Some(false);
        f.https_proxy = Some(true);
        f.stun_udp = Some(false);
        f.paths = vec![
            (MediaPath::Udp, 3478, false),
            (MediaPath::Tls, 443, false),
            (MediaPath::ProxyTls, 443, true),
            (MediaPath::ProxyTcp, 80, true),
        ];
        let v = decide(&f);
        assert_eq!(v.code, VerdictCode::Degraded);
        assert!(v.summary.starts_with("No direct outbound traffic"), "{v:?}");
        assert!(v.summary.contains("through the proxy"));
    }

    #[test]
    fn nothing_to_the_relay_is_no_media_and_unreachable_when_https_fails() {
        let mut f = base();
        f.paths = vec![(MediaPath::Udp, 3478, false), (MediaPath::Tls, 443, false)];
        let v = decide(&f);
        assert_eq!(v.code, VerdictCode::NoMedia);
        assert!(
            v.open
                .iter()
                .any(|o| o.contains("DPI") || o.contains("inspection")),
            "{v:?}"
        );
        f.https_direct = Some(false);
        let v = decide(&f);
        assert_eq!(v.code, VerdictCode::Unreachable);
        assert!(
            v.open.iter().any(|o| o.starts_with("TCP 443 to iris.lab")),
            "{v:?}"
        );
        assert_eq!(VerdictCode::Unreachable.exit_code(), 3);
    }

    #[test]
    fn r27_a_proxy_that_limits_tunnels_is_named() {
        let mut f = base();
        f.proxy = true;
        f.https_proxy = Some(true);
        f.paths = vec![(MediaPath::Udp, 3478, true)];
        f.proxy_tunnels = Some((4, 8));
        let v = decide(&f);
        assert!(
            v.notes
                .iter()
                .any(|n| n.contains("only 4 of 8") && n.contains("R-27")),
            "{v:?}"
        );
        f.proxy_tunnels = Some((8, 8));
        assert!(!decide(&f).notes.iter().any(|n| n.contains("R-27")));
    }

    #[test]
    fn without_credentials_media_is_not_checked() {
        let mut f = base();
        f.credentials = false;
        assert_eq!(decide(&f).code, VerdictCode::Incomplete);
    }
}
