//! The flows an administrator must allow, derived from the configuration (SPEC §3, §4, R-29); no output formatting.
use crate::config::Config;
use serde::Serialize;
use std::collections::BTreeSet;

/// A deployment profile of SPEC §4: each needs the flows of the one before plus its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Messaging, presence, calls and conferences (no telephony).
    Collaboration,
    /// Collaboration plus the WebRTC gateway and PBX agent on the customer LAN.
    Hybrid,
    /// Collaboration plus SIP desk phones registered to the cloud PBX.
    Hub,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Collaboration => "collaboration",
            Profile::Hybrid => "hybrid",
            Profile::Hub => "hub",
        }
    }
}

/// Who opens the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Web, desktop and mobile apps on the customer network.
    Clients,
    /// The WebRTC gateway next to the PBX.
    Gateway,
    /// The PBX agent.
    Agent,
    /// SIP desk phones.
    SipDevices,
    /// The Internet, towards the Iris servers (rules for the server's own firewall).
    Internet,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Clients => "clients",
            Source::Gateway => "gateway",
            Source::Agent => "agent",
            Source::SipDevices => "sip-devices",
            Source::Internet => "internet",
        }
    }
}

/// Which firewall the flow concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Leaving the customer network (its egress firewall or proxy).
    Outbound,
    /// Arriving at the Iris servers (their own firewall).
    Inbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A port or an inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Ports {
    pub first: u16,
    pub last: u16,
}

impl Ports {
    pub const fn one(p: u16) -> Ports {
        Ports { first: p, last: p }
    }
    pub const fn range(first: u16, last: u16) -> Ports {
        Ports { first, last }
    }
}

impl std::fmt::Display for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// One flow to allow: who opens it, to which names, on which protocol and ports, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flow {
    pub profile: Profile,
    pub direction: Direction,
    pub source: Source,
    pub protocol: Protocol,
    pub ports: Vec<Ports>,
    /// DNS names of the destination; empty for "any" (e.g. push services, LAN peers).
    pub names: Vec<String>,
    pub purpose: String,
    /// The SPEC requirements the flow serves.
    pub requirements: Vec<&'static str>,
    /// Needed only when a fallback or an optional feature is used.
    pub optional: bool,
}

/// Client operating systems' ephemeral source ports (SPEC §10), for stateless filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct EphemeralRange {
    pub os: &'static str,
    pub ports: Ports,
}

pub const EPHEMERAL: [EphemeralRange; 3] = [
    EphemeralRange {
        os: "Windows, macOS, iOS",
        ports: Ports::range(49152, 65535),
    },
    EphemeralRange {
        os: "Android 7 and later",
        ports: Ports::range(37000, 50000),
    },
    EphemeralRange {
        os: "Linux",
        ports: Ports::range(32768, 60999),
    },
];

/// A relay as clients reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayPorts {
    pub name: String,
    pub udp: Vec<u16>,
    pub tcp: Vec<u16>,
    pub tls: Vec<u16>,
}

/// The HTTPS port clients use (public_port, or the first TLS listener's).
pub fn https_port(config: &Config) -> u16 {
    config
        .http
        .public_port
        .or_else(|| config.http.listen.first().map(|a| a.port()))
        .unwrap_or(443)
}

fn dedup(ports: impl IntoIterator<Item = u16>) -> Vec<u16> {
    ports
        .into_iter()
        .filter(|p| *p != 0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The relays handed to clients: `[[relay.servers]]`, or this server's own relay.
pub fn relays(config: &Config) -> Vec<RelayPorts> {
    if !config.roles.relay && config.relay.servers.is_empty() {
        return Vec::new();
    }
    if config.relay.servers.is_empty() {
        let name = config
            .relay
            .public_name
            .clone()
            .unwrap_or_else(|| config.domain.clone());
        let tcp = config
            .relay
            .tcp_listen
            .iter()
            .chain(config.http.plain_listen.iter())
            .map(|a| a.port());
        return vec![RelayPorts {
            name,
            udp: dedup(config.relay.udp_listen.iter().map(|a| a.port())),
            tcp: dedup(tcp),
            tls: dedup([https_port(config)]),
        }];
    }
    config
        .relay
        .servers
        .iter()
        .map(|s| RelayPorts {
            name: s.name.clone(),
            udp: dedup([s.udp_port]),
            tcp: dedup(s.tcp_ports.iter().copied()),
            tls: dedup([s.tls_port]),
        })
        .collect()
}

fn ports(list: &[u16]) -> Vec<Ports> {
    list.iter().copied().map(Ports::one).collect()
}

/// Collects flows in order; `add` keeps the call sites to one line each.
struct Builder(Vec<Flow>);

impl Builder {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        profile: Profile,
        direction: Direction,
        source: Source,
        protocol: Protocol,
        ports: Vec<Ports>,
        names: &[String],
        purpose: &str,
        requirements: &[&'static str],
        optional: bool,
    ) {
        if ports.is_empty() {
            return;
        }
        self.0.push(Flow {
            profile,
            direction,
            source,
            protocol,
            ports,
            names: names.to_vec(),
            purpose: purpose.to_owned(),
            requirements: requirements.to_vec(),
            optional,
        });
    }
}

/// Every flow of every profile for this configuration, outbound (customer side) first, then
/// inbound (the Iris servers' own firewall).
pub fn flows(config: &Config) -> Vec<Flow> {
    use Direction::{Inbound, Outbound};
    use Profile::{Collaboration, Hub, Hybrid};
    use Protocol::{Tcp, Udp};
    let mut b = Builder(Vec::new());
    let service = vec![config.domain.clone()];
    let https = https_port(config);
    let relays = relays(config);
    let relay_names: Vec<String> = relays.iter().map(|r| r.name.clone()).collect();
    let all = |f: fn(&RelayPorts) -> &Vec<u16>| dedup(relays.iter().flat_map(|r| f(r).clone()));
    let (udp, tcp, tls) = (all(|r| &r.udp), all(|r| &r.tcp), all(|r| &r.tls));
    let any: Vec<String> = Vec::new();

    // Collaboration: apps (SPEC §4 row 1).
    let c = Clients;
    use Source::{Agent, Clients, Gateway, Internet, SipDevices};
    b.add(Collaboration, Outbound, c, Tcp, vec![Ports::one(https)], &service,
        "HTTPS REST, web app, files and XMPP over secure WebSocket (CONNECT/Upgrade through a proxy)",
        &["R-2", "R-3", "R-4"], false);
    b.add(
        Collaboration,
        Outbound,
        c,
        Udp,
        ports(&udp),
        &relay_names,
        "STUN/TURN media relay (DTLS-SRTP inside)",
        &["R-8", "R-9", "R-12"],
        false,
    );
    b.add(
        Collaboration,
        Outbound,
        c,
        Tcp,
        ports(&tls),
        &relay_names,
        "TURN over TLS: media when UDP is blocked, or through a proxy with CONNECT",
        &["R-8", "R-12"],
        false,
    );
    b.add(
        Collaboration,
        Outbound,
        c,
        Tcp,
        ports(&tcp),
        &relay_names,
        "TURN over TCP (80: proxies whose TLS tunnelling is broken; media stays DTLS-SRTP)",
        &["R-8"],
        true,
    );
    b.add(
        Collaboration,
        Outbound,
        c,
        Udp,
        vec![Ports::range(49152, 65535)],
        &relay_names,
        "direct media to the conference unit and relayed peers (else it goes through the relay)",
        &["R-13"],
        true,
    );
    if config.roles.xmpp {
        let x = dedup(
            config
                .xmpp
                .c2s_listen
                .iter()
                .chain(&config.xmpp.direct_tls_listen)
                .map(|a| a.port()),
        );
        b.add(
            Collaboration,
            Outbound,
            c,
            Tcp,
            ports(&x),
            &service,
            "third-party XMPP clients (5222 STARTTLS, 5223 direct TLS); Iris apps use 443",
            &["R-3"],
            true,
        );
    }
    b.add(
        Collaboration,
        Outbound,
        c,
        Tcp,
        vec![Ports::one(5223), Ports::one(2197), Ports::one(443)],
        &["*.push.apple.com".to_owned()],
        "Apple push for Wi-Fi-only iOS devices",
        &["§4"],
        true,
    );
    b.add(
        Collaboration,
        Outbound,
        c,
        Tcp,
        vec![Ports::range(5228, 5230), Ports::one(443)],
        &[
            "mtalk.google.com".to_owned(),
            "fcm.googleapis.com".to_owned(),
        ],
        "Firebase push for Wi-Fi-only Android devices",
        &["§4"],
        true,
    );

    // Hybrid telephony (SPEC §4 row 2, §5).
    b.add(
        Hybrid,
        Outbound,
        Gateway,
        Tcp,
        vec![Ports::one(https)],
        &service,
        "gateway HTTPS + WSS to the cloud",
        &["R-14"],
        false,
    );
    b.add(
        Hybrid,
        Outbound,
        Gateway,
        Udp,
        ports(&udp),
        &relay_names,
        "gateway media to the relays",
        &["R-14"],
        false,
    );
    b.add(
        Hybrid,
        Outbound,
        Gateway,
        Tcp,
        ports(&tcp).into_iter().chain(ports(&tls)).collect(),
        &relay_names,
        "gateway media through an HTTP proxy (TCP 80 by default, TLS 443 as an option)",
        &["R-16"],
        true,
    );
    b.add(
        Hybrid,
        Outbound,
        Agent,
        Tcp,
        vec![Ports::one(https)],
        &service,
        "PBX agent WSS link (CTI, phonebook)",
        &["R-19"],
        false,
    );
    b.add(
        Hybrid,
        Outbound,
        Gateway,
        Udp,
        vec![Ports::one(53)],
        &any,
        "DNS resolver (needed even with IP addresses configured)",
        &["R-16"],
        false,
    );
    b.add(
        Hybrid,
        Outbound,
        Gateway,
        Tcp,
        vec![Ports::one(5060), Ports::one(5061)],
        &any,
        "LAN: gateway to PBX, SIP (5060 clear, 5061 SIP-TLS)",
        &["R-14"],
        false,
    );
    b.add(
        Hybrid,
        Outbound,
        Gateway,
        Udp,
        vec![Ports::one(5060), Ports::range(30000, 40000)],
        &any,
        "LAN: gateway to PBX, SIP/UDP and RTP/SRTP to media gateways, SBCs and IP phones",
        &["R-14"],
        false,
    );
    b.add(
        Hybrid,
        Outbound,
        c,
        Udp,
        vec![Ports::range(20000, 29999)],
        &any,
        "LAN: Iris clients to the gateway's WebRTC media",
        &["R-14"],
        false,
    );

    // Hub / cloud PBX (SPEC §4 row 3, §6).
    let sip = vec![format!("sip.{}", config.domain)];
    let devices = vec![format!("devices.{}", config.domain)];
    b.add(
        Hub,
        Outbound,
        SipDevices,
        Tcp,
        vec![Ports::one(5061)],
        &sip,
        "SIP over TLS registration and calls (kept open by the device)",
        &["R-20"],
        false,
    );
    b.add(
        Hub,
        Outbound,
        SipDevices,
        Tcp,
        vec![Ports::one(443)],
        &devices,
        "zero-touch provisioning, firmware and APIs",
        &["R-21"],
        false,
    );
    b.add(
        Hub,
        Outbound,
        SipDevices,
        Udp,
        vec![Ports::range(30000, 44999)],
        &sip,
        "SRTP media to the cloud PBX",
        &["R-22"],
        false,
    );
    b.add(
        Hub,
        Outbound,
        c,
        Udp,
        vec![Ports::range(30000, 44999)],
        &sip,
        "softphone WebRTC media to the cloud PBX (else through a relay)",
        &["R-23"],
        true,
    );
    b.add(
        Hub,
        Outbound,
        SipDevices,
        Udp,
        vec![Ports::one(53)],
        &any,
        "DNS",
        &["§4"],
        false,
    );
    b.add(
        Hub,
        Outbound,
        SipDevices,
        Tcp,
        vec![Ports::one(53)],
        &any,
        "DNS (large answers)",
        &["§4"],
        false,
    );
    b.add(
        Hub,
        Outbound,
        SipDevices,
        Udp,
        vec![Ports::one(123)],
        &any,
        "NTP",
        &["§4"],
        false,
    );

    // The Iris servers' own firewall: what must reach them.
    let mut tcp_in = vec![https];
    tcp_in.extend(config.http.plain_listen.iter().map(|a| a.port()));
    if config.roles.relay {
        tcp_in.extend(config.relay.tcp_listen.iter().map(|a| a.port()));
    }
    b.add(
        Collaboration,
        Inbound,
        Internet,
        Tcp,
        ports(&dedup(tcp_in)),
        &service,
        "HTTPS/WSS, TURN over TLS (443), TURN over TCP (80, 3478)",
        &["R-2", "R-3", "R-8"],
        false,
    );
    if config.roles.relay {
        b.add(
            Collaboration,
            Inbound,
            Internet,
            Udp,
            ports(&dedup(config.relay.udp_listen.iter().map(|a| a.port()))),
            &relay_names,
            "STUN/TURN over UDP",
            &["R-8"],
            false,
        );
        b.add(
            Collaboration,
            Inbound,
            Internet,
            Udp,
            vec![Ports::range(
                config.relay.relay_port_min,
                config.relay.relay_port_max,
            )],
            &relay_names,
            "relayed transport addresses (peers and other relays send here)",
            &["R-8", "R-9"],
            false,
        );
    }
    if config.roles.xmpp {
        let x = dedup(
            config
                .xmpp
                .c2s_listen
                .iter()
                .chain(&config.xmpp.direct_tls_listen)
                .map(|a| a.port()),
        );
        b.add(
            Collaboration,
            Inbound,
            Internet,
            Tcp,
            ports(&x),
            &service,
            "XMPP for third-party clients",
            &["R-3"],
            true,
        );
    }
    b.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(flows: &[Flow], profile: Profile, dir: Direction, proto: Protocol, port: u16) -> bool {
        flows.iter().any(|f| {
            f.profile == profile
                && f.direction == dir
                && f.protocol == proto
                && f.ports.iter().any(|p| p.first <= port && port <= p.last)
        })
    }

    #[test]
    fn spec_4_collaboration_needs_443_and_3478_and_the_relay_fallbacks() {
        let flows = flows(&Config::default());
        use Direction::Outbound;
        assert!(has(
            &flows,
            Profile::Collaboration,
            Outbound,
            Protocol::Tcp,
            443
        ));
        assert!(has(
            &flows,
            Profile::Collaboration,
            Outbound,
            Protocol::Udp,
            3478
        ));
        assert!(has(
            &flows,
            Profile::Collaboration,
            Outbound,
            Protocol::Tcp,
            80
        ));
        let required: Vec<&Flow> = flows
            .iter()
            .filter(|f| {
                f.profile == Profile::Collaboration && f.direction == Outbound && !f.optional
            })
            .collect();
        assert!(
            required
                .iter()
                .all(|f| f.ports.iter().all(|p| [443, 3478].contains(&p.first))),
            "collaboration needs no more than TCP 443 and UDP 3478: {required:#?}"
        );
    }

    #[test]
    fn spec_4_hub_has_sip_tls_srtp_dns_ntp() {
        let flows = flows(&Config::default());
        use Direction::Outbound;
        for (proto, port) in [
            (Protocol::Tcp, 5061),
            (Protocol::Udp, 30000),
            (Protocol::Udp, 44999),
            (Protocol::Udp, 53),
            (Protocol::Udp, 123),
        ] {
            assert!(
                has(&flows, Profile::Hub, Outbound, proto, port),
                "{proto:?} {port}"
            );
        }
        assert!(has(&flows, Profile::Hybrid, Outbound, Protocol::Udp, 3478));
    }

    #[test]
    fn flows_follow_the_configuration() {
        let mut config = Config {
            domain: "chat.example.com".into(),
            ..Config::default()
        };
        config.http.public_port = Some(8443);
        config.relay.servers = vec![iris_relay::RelayServer {
            name: "turn-eu1.example.com".into(),
            udp_port: 3479,
            tcp_ports: vec![80],
            tls_port: 5349,
            ..Default::default()
        }];
        let flows = flows(&config);
        let relay = flows
            .iter()
            .find(|f| f.protocol == Protocol::Udp && f.ports == vec![Ports::one(3479)])
            .expect("relay udp flow");
        assert_eq!(relay.names, vec!["turn-eu1.example.com".to_owned()]);
        assert!(has(
            &flows,
            Profile::Collaboration,
            Direction::Outbound,
            Protocol::Tcp,
            8443
        ));
        assert!(has(
            &flows,
            Profile::Collaboration,
            Direction::Outbound,
            Protocol::Tcp,
            5349
        ));
        assert!(!has(
            &flows,
            Profile::Collaboration,
            Direction::Outbound,
            Protocol::Udp,
            3478
        ));
    }
}
