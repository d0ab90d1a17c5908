//! ICE server lists for clients: the two relays nearest the client's IP, with REST credentials; no HTTP.
//!
//! [`IceServers`] is built once from the [`RelayConfig`] (it reads the GeoIP database file, if
//! any) and then answers [`IceServers::ice_servers`] without I/O: one MaxMind lookup, a pass
//! over the configured relays, one HMAC-SHA1. It is `Send + Sync`, meant to sit in an `Arc`
//! behind `GET /api/v1/ice-servers`.
//!
//! Credentials are coturn's "TURN REST API" scheme, computed by the same
//! [`RestCredentials`] the TURN core verifies them with: username `"<expiry-unix>:<user>"`,
//! credential `base64(HMAC-SHA1(shared_secret, username))`. Every relay of a deployment must
//! therefore share `shared_secret`.

use crate::config::{RelayConfig, RelayServer};
use iris_model::Secret;
use iris_turn::RestCredentials;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many relays a client is given.
pub const NEAREST: usize = 2;

/// One entry of a WebRTC configuration's `iceServers`, serialised exactly as an
/// `RTCIceServer` dictionary: `{"urls": [...], "username": "...", "credential": "..."}`
/// (`username` and `credential` are left out of STUN-only entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IceServer {
    /// `stun:`, `turn:` or `turns:` URIs (RFC 7064 / RFC 7065).
    pub urls: Vec<String>,
    /// TURN username `"<expiry-unix>:<user>"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password; serialised in clear (it is what the client needs), never `Debug`-printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<Secret>,
}

/// Why an [`IceServers`] could not be built.
#[derive(Debug)]
pub enum IceServersError {
    /// No `shared_secret`: REST credentials cannot be issued.
    NoSharedSecret,
    /// No `servers` are listed and the local relay has neither `public_name` nor `public_ips`.
    NoServerName,
    /// A `[[relay.servers]]` entry is invalid (which one and why).
    InvalidServer {
        /// The entry's `name`.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The GeoIP database could not be read or is not a MaxMind DB.
    GeoIp {
        /// The configured path.
        path: PathBuf,
        /// The reader's error.
        error: maxminddb::MaxMindDbError,
    },
}

impl std::fmt::Display for IceServersError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IceServersError::NoSharedSecret => {
                f.write_str("relay.shared_secret is needed to issue TURN credentials")
            }
            IceServersError::NoServerName => f.write_str(
                "no relay to advertise: list [[relay.servers]] or set relay.public_name",
            ),
            IceServersError::InvalidServer { name, why } => {
                write!(f, "relay server {name:?}: {why}")
            }
            IceServersError::GeoIp { path, error } => {
                write!(f, "GeoIP database {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for IceServersError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IceServersError::GeoIp { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A relay as clients see it: where it is and its precomputed URIs.
#[derive(Debug, Clone)]
struct Candidate {
    /// Latitude and longitude in radians, if known.
    position: Option<(f64, f64)>,
    /// `stun:` URI, if the relay has UDP.
    stun: Option<String>,
    /// `turn:` / `turns:` URIs.
    turn: Vec<String>,
}

/// Chooses relays for clients and issues their credentials. Cheap to call, `Send + Sync`.
pub struct IceServers {
    candidates: Vec<Candidate>,
    rest: RestCredentials,
    ttl_secs: u64,
    geoip: Option<maxminddb::Reader<Vec<u8>>>,
}

impl std::fmt::Debug for IceServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServers")
            .field("candidates", &self.candidates)
            .field("ttl_secs", &self.ttl_secs)
            .field("geoip", &self.geoip.is_some())
            .finish_non_exhaustive()
    }
}

/// The subset of a GeoIP2/GeoLite2 City record that is read.
#[derive(Deserialize)]
struct GeoRecord {
    location: Option<GeoLocation>,
}

#[derive(Deserialize)]
struct GeoLocation {
    latitude: Option<f64>,
    longitude: Option<f64>,
}

impl IceServers {
    /// Builds the relay list from `config.servers` (or the local relay when it is empty),
    /// and opens `config.geoip_database` if set.
    pub fn new(config: &RelayConfig) -> Result<Self, IceServersError> {
        let secret = config
            .shared_secret
            .as_ref()
            .filter(|s| !s.is_empty())
            .ok_or(IceServersError::NoSharedSecret)?;
        let servers = if config.servers.is_empty() {
            vec![local_server(config)?]
        } else {
            config.servers.clone()
        };
        let candidates = servers
            .iter()
            .map(candidate)
            .collect::<Result<Vec<_>, _>>()?;
        let geoip = config
            .geoip_database
            .as_deref()
            .map(open_geoip)
            .transpose()?;
        Ok(IceServers {
            candidates,
            rest: RestCredentials::new(secret.expose().as_bytes()),
            ttl_secs: config.credential_ttl_secs.max(1),
            geoip,
        })
    }

    /// The `iceServers` for a client at `client_ip` logged in as `user`, valid for
    /// `credential_ttl_secs` from `now`: first one STUN entry listing the chosen relays'
    /// `stun:` URIs, then one TURN entry per chosen relay, nearest first.
    ///
    /// The [`NEAREST`] relays are chosen by great-circle distance from the client's
    /// geolocation; when there is no database, no location for the IP (private addresses)
    /// or no position for a relay, configuration order decides (relays without a position
    /// come after the located ones).
    pub fn ice_servers(&self, client_ip: IpAddr, user: &str, now: SystemTime) -> Vec<IceServer> {
        let chosen = self.nearest(client_ip);
        let expiry = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .saturating_add(self.ttl_secs);
        let (username, credential) = self.rest.issue(user, expiry);
        let credential = Secret::new(credential);

        let mut out = Vec::with_capacity(1 + chosen.len());
        let stun: Vec<String> = chosen.iter().filter_map(|c| c.stun.clone()).collect();
        if !stun.is_empty() {
            out.push(IceServer {
                urls: stun,
                username: None,
                credential: None,
            });
        }
        for c in chosen.iter().filter(|c| !c.turn.is_empty()) {
            out.push(IceServer {
                urls: c.turn.clone(),
                username: Some(username.clone()),
                credential: Some(credential.clone()),
            });
        }
        out
    }

    /// The client's position in radians, if the database knows it.
    fn locate(&self, ip: IpAddr) -> Option<(f64, f64)> {
        let reader = self.geoip.as_ref()?;
        let ip = ip.to_canonical();
        let record: GeoRecord = reader.lookup(ip).ok()?.decode().ok()??;
        let location = record.location?;
        position(location.latitude?, location.longitude?)
    }

    /// Up to [`NEAREST`] candidates, nearest first.
    fn nearest(&self, client_ip: IpAddr) -> Vec<&Candidate> {
        let Some(client) = self.locate(client_ip) else {
            return self.candidates.iter().take(NEAREST).collect();
        };
        let mut ranked: Vec<(f64, usize)> = self
            .candidates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let d = c
                    .position
                    .map_or(f64::INFINITY, |p| central_angle(client, p));
                (d, i)
            })
            .collect();
        // Stable: equal distances keep configuration order.
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        ranked
            .iter()
            .take(NEAREST)
            .filter_map(|&(_, i)| self.candidates.get(i))
            .collect()
    }
}

fn open_geoip(path: &Path) -> Result<maxminddb::Reader<Vec<u8>>, IceServersError> {
    maxminddb::Reader::open_readfile(path).map_err(|error| IceServersError::GeoIp {
        path: path.to_owned(),
        error,
    })
}

/// The local relay as the only server: `public_name` (or its first public IP), the ports of
/// its first UDP and its TCP listeners, and TLS 443 from the main listener.
fn local_server(config: &RelayConfig) -> Result<RelayServer, IceServersError> {
    let name = match (&config.public_name, config.public_ips.first()) {
        (Some(name), _) => name.clone(),
        (None, Some(ip)) => ip.to_string(),
        (None, None) => return Err(IceServersError::NoServerName),
    };
    let mut tcp_ports: Vec<u16> = Vec::new();
    for port in config.tcp_listen.iter().map(|a| a.port()) {
        if !tcp_ports.contains(&port) {
            tcp_ports.push(port);
        }
    }
    Ok(RelayServer {
        name,
        region: None,
        latitude: None,
        longitude: None,
        udp_port: config.udp_listen.first().map_or(0, |a| a.port()),
        tcp_ports,
        tls_port: 443,
    })
}

/// Latitude and longitude in degrees to radians, if in range.
fn position(latitude: f64, longitude: f64) -> Option<(f64, f64)> {
    ((-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude))
        .then(|| (latitude.to_radians(), longitude.to_radians()))
}

/// Great-circle central angle between two positions in radians (haversine); distance on
/// Earth is this times 6371 km, ordering needs only the angle.
fn central_angle(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = a;
    let (lat2, lon2) = b;
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * h.sqrt().min(1.0).asin()
}

/// A DNS name or IP literal usable as the host of a `turn:` URI.
fn valid_host(name: &str) -> bool {
    name.parse::<IpAddr>().is_ok()
        || (!name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|l| {
                !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-')
            })
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
}

fn candidate(server: &RelayServer) -> Result<Candidate, IceServersError> {
    let invalid = |why| IceServersError::InvalidServer {
        name: server.name.clone(),
        why,
    };
    if !valid_host(&server.name) {
        return Err(invalid("name is not a DNS name or IP address"));
    }
    let position = match (server.latitude, server.longitude) {
        (Some(lat), Some(lon)) => {
            Some(position(lat, lon).ok_or_else(|| invalid("latitude or longitude out of range"))?)
        }
        (None, None) => None,
        _ => return Err(invalid("latitude and longitude go together")),
    };
    let host = match server.name.parse::<Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]"),
        Err(_) => server.name.clone(),
    };
    let stun = (server.udp_port != 0).then(|| format!("stun:{host}:{}", server.udp_port));
    let mut turn = Vec::new();
    if server.udp_port != 0 {
        turn.push(format!("turn:{host}:{}?transport=udp", server.udp_port));
    }
    for port in server.tcp_ports.iter().filter(|&&p| p != 0) {
        turn.push(format!("turn:{host}:{port}?transport=tcp"));
    }
    if server.tls_port != 0 {
        turn.push(format!("turns:{host}:{}?transport=tcp", server.tls_port));
    }
    if turn.is_empty() {
        return Err(invalid("no port: set udp_port, tcp_ports or tls_port"));
    }
    Ok(Candidate {
        position,
        stun,
        turn,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn server(name: &str, lat: f64, lon: f64) -> RelayServer {
        RelayServer {
            name: name.to_owned(),
            region: None,
            latitude: Some(lat),
            longitude: Some(lon),
            ..RelayServer::default()
        }
    }

    fn config(servers: Vec<RelayServer>) -> RelayConfig {
        RelayConfig {
            shared_secret: Some(Secret::new("north")),
            servers,
            ..RelayConfig::default()
        }
    }

    #[test]
    fn central_angle_paris_london_is_about_344_km() {
        let paris = position(48.8566, 2.3522).unwrap();
        let london = position(51.5074, -0.1278).unwrap();
        let km = central_angle(paris, london) * 6371.0;
        assert!((340.0..350.0).contains(&km), "{km}");
        assert_eq!(central_angle(paris, paris), 0.0);
        let antipode = position(-48.8566, 2.3522 - 180.0).unwrap();
        assert!((central_angle(paris, antipode) - std::f64::consts::PI).abs() < 1e-9);
    }

    #[test]
    fn urls_follow_rfc7064_rfc7065_and_ports() {
        let mut s = server("turn-eu1.example.com", 48.0, 2.0);
        s.tcp_ports = vec![3478, 80];
        let c = candidate(&s).unwrap();
        assert_eq!(c.stun.as_deref(), Some("stun:turn-eu1.example.com:3478"));
        assert_eq!(
            c.turn,
            [
                "turn:turn-eu1.example.com:3478?transport=udp",
                "turn:turn-eu1.example.com:3478?transport=tcp",
                "turn:turn-eu1.example.com:80?transport=tcp",
                "turns:turn-eu1.example.com:443?transport=tcp",
            ]
        );
        let mut v6 = server("2001:db8::1", 0.0, 0.0);
        v6.udp_port = 0;
        v6.tcp_ports.clear();
        let c = candidate(&v6).unwrap();
        assert_eq!(c.stun, None);
        assert_eq!(c.turn, ["turns:[2001:db8::1]:443?transport=tcp"]);
    }

    #[test]
    fn rejects_invalid_servers() {
        for (s, why) in [
            (server("turn:x", 0.0, 0.0), "name"),
            (server("a b", 0.0, 0.0), "name"),
            (server("", 0.0, 0.0), "name"),
            (server("x.example", 91.0, 0.0), "range"),
            (
                RelayServer {
                    latitude: None,
                    ..server("x.example", 1.0, 0.0)
                },
                "together",
            ),
            (
                RelayServer {
                    udp_port: 0,
                    tcp_ports: vec![],
                    tls_port: 0,
                    ..server("x.example", 1.0, 0.0)
                },
                "port",
            ),
        ] {
            let e = IceServers::new(&config(vec![s])).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
        let mut c = config(vec![server("a.example", 0.0, 0.0)]);
        c.shared_secret = None;
        assert!(matches!(
            IceServers::new(&c),
            Err(IceServersError::NoSharedSecret)
        ));
        assert!(matches!(
            IceServers::new(&config(vec![])),
            Err(IceServersError::NoServerName)
        ));
    }

    #[test]
    fn local_relay_is_the_server_when_none_are_listed() {
        let mut c = config(vec![]);
        c.public_name = Some("turn.example.com".to_owned());
        let ice = IceServers::new(&c).unwrap();
        let list = ice.ice_servers("192.0.2.1".parse().unwrap(), "alice", UNIX_EPOCH);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].urls, ["stun:turn.example.com:3478"]);
        assert_eq!(
            list[1].urls,
            [
                "turn:turn.example.com:3478?transport=udp",
                "turn:turn.example.com:3478?transport=tcp",
                "turns:turn.example.com:443?transport=tcp",
            ]
        );
        assert_eq!(list[1].username.as_deref(), Some("86400:alice"));
    }

    #[test]
    fn without_database_config_order_decides() {
        let ice = IceServers::new(&config(vec![
            server("a.example", 0.0, 0.0),
            server("b.example", 10.0, 10.0),
            server("c.example", 20.0, 20.0),
        ]))
        .unwrap();
        let list = ice.ice_servers("8.8.8.8".parse().unwrap(), "bob", UNIX_EPOCH);
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].urls, ["stun:a.example:3478", "stun:b.example:3478"]);
        assert!(list[1].urls[0].starts_with("turn:a.example:"));
        assert!(list[2].urls[0].starts_with("turn:b.example:"));
    }

    #[test]
    fn is_send_sync_and_debug_hides_the_credential() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<IceServers>();
        let ice = IceServers::new(&config(vec![server("a.example", 0.0, 0.0)])).unwrap();
        let list = ice.ice_servers("192.0.2.1".parse().unwrap(), "bob", UNIX_EPOCH);
        let debug = format!("{list:?} {ice:?}");
        let credential = list[1].credential.as_ref().unwrap().expose();
        assert!(!debug.contains(credential), "{debug}");
        assert!(!debug.contains("north"), "{debug}");
    }
}
