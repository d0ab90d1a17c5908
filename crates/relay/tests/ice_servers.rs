//! ICE server lists give the two nearest relays by GeoIP, fall back to config order, and carry credentials the relay accepts.
#![allow(clippy::unwrap_used)]

mod common;

use common::mmdb::{build, city, country_only};
use common::*;
use iris_relay::{IceServers, IceServersError, RelayConfig, RelayServer, Secret};
use iris_stun::long_term_key;
use iris_turn::RestCredentials;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn relay(name: &str, region: &str, latitude: f64, longitude: f64) -> RelayServer {
    RelayServer {
        name: name.to_owned(),
        region: Some(region.to_owned()),
        latitude: Some(latitude),
        longitude: Some(longitude),
        ..RelayServer::default()
    }
}

fn servers() -> Vec<RelayServer> {
    vec![
        relay("turn-us1.example.com", "us-east", 39.04, -77.49),
        relay("turn-eu1.example.com", "eu-west", 48.86, 2.35),
        relay("turn-eu2.example.com", "eu-central", 50.11, 8.68),
        relay("turn-sg1.example.com", "ap-southeast", 1.29, 103.85),
        relay("turn-au1.example.com", "ap-sydney", -33.87, 151.21),
    ]
}

/// Writes a small City-format database into a fresh file and returns its path.
fn geoip_file(tag: &str) -> PathBuf {
    let db = build(&[
        ("198.51.100.0".parse().unwrap(), 24, city(48.85, 2.35)), // Paris
        ("203.0.113.0".parse().unwrap(), 24, city(40.71, -74.01)), // New York
        ("192.0.2.0".parse().unwrap(), 24, city(1.35, 103.82)),   // Singapore
        ("100.64.0.0".parse().unwrap(), 10, country_only("FR")),  // no location
        ("2001:db8:1::".parse().unwrap(), 48, city(-33.87, 151.2)), // Sydney
    ]);
    let path = std::env::temp_dir().join(format!(
        "iris-relay-geoip-{}-{tag}.mmdb",
        std::process::id()
    ));
    std::fs::write(&path, db).unwrap();
    path
}

fn config(geoip: Option<PathBuf>) -> RelayConfig {
    RelayConfig {
        shared_secret: Some(Secret::new("north")),
        geoip_database: geoip,
        servers: servers(),
        ..RelayConfig::default()
    }
}

/// The relay names of the TURN entries, in order.
fn chosen(ice: &IceServers, ip: &str) -> Vec<String> {
    let ip: IpAddr = ip.parse().unwrap();
    ice.ice_servers(ip, "alice", SystemTime::now())
        .iter()
        .filter(|s| s.username.is_some())
        .map(|s| {
            let url = &s.urls[0];
            url["turn:".len()..url.rfind(':').unwrap()].to_owned()
        })
        .collect()
}

#[test]
fn rfc_r9_two_nearest_relays_by_client_geolocation() {
    let path = geoip_file("nearest");
    let ice = IceServers::new(&config(Some(path.clone()))).unwrap();
    std::fs::remove_file(&path).unwrap();

    let paris = ["turn-eu1.example.com", "turn-eu2.example.com"];
    assert_eq!(chosen(&ice, "198.51.100.7"), paris);
    assert_eq!(chosen(&ice, "::ffff:198.51.100.7"), paris, "v4-mapped");
    assert_eq!(
        chosen(&ice, "203.0.113.9"),
        ["turn-us1.example.com", "turn-eu1.example.com"]
    );
    assert_eq!(
        chosen(&ice, "192.0.2.200"),
        ["turn-sg1.example.com", "turn-au1.example.com"]
    );
    assert_eq!(
        chosen(&ice, "2001:db8:1:2::5"),
        ["turn-au1.example.com", "turn-sg1.example.com"]
    );
}

#[test]
fn rfc_r9_config_order_when_location_is_unknown() {
    let path = geoip_file("fallback");
    let ice = IceServers::new(&config(Some(path.clone()))).unwrap();
    std::fs::remove_file(&path).unwrap();
    let first_two = ["turn-us1.example.com", "turn-eu1.example.com"];
    for ip in [
        "10.1.2.3",
        "127.0.0.1",
        "100.64.1.1",
        "2001:db8:2::1",
        "::1",
    ] {
        assert_eq!(chosen(&ice, ip), first_two, "{ip}");
    }
    // Relays without a position rank after the located ones.
    let path = geoip_file("unplaced");
    let mut cfg = config(Some(path.clone()));
    cfg.servers[1].latitude = None;
    cfg.servers[1].longitude = None;
    let ice = IceServers::new(&cfg).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        chosen(&ice, "198.51.100.7"),
        ["turn-eu2.example.com", "turn-us1.example.com"]
    );
    // No database at all.
    let ice = IceServers::new(&config(None)).unwrap();
    assert_eq!(chosen(&ice, "198.51.100.7"), first_two);
}

#[test]
fn unreadable_database_is_a_config_error() {
    let missing = IceServers::new(&config(Some("/nonexistent/geo.mmdb".into())));
    assert!(matches!(missing, Err(IceServersError::GeoIp { .. })));
    let path = std::env::temp_dir().join(format!("iris-relay-bad-{}.mmdb", std::process::id()));
    std::fs::write(&path, b"not a maxmind database").unwrap();
    let garbage = IceServers::new(&config(Some(path.clone())));
    std::fs::remove_file(&path).unwrap();
    let e = garbage.unwrap_err();
    assert!(e.to_string().contains("GeoIP database"), "{e}");
}

#[test]
fn serialises_as_rtc_ice_server() {
    let mut cfg = config(None);
    cfg.servers.truncate(2);
    cfg.servers[1].tcp_ports = vec![3478, 80];
    cfg.credential_ttl_secs = 3600;
    let ice = IceServers::new(&cfg).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let list = ice.ice_servers("192.0.2.1".parse().unwrap(), "alice", now);
    let credential = RestCredentials::new("north").password("1800003600:alice");
    let json = serde_json::to_value(&list).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"urls": ["stun:turn-us1.example.com:3478", "stun:turn-eu1.example.com:3478"]},
            {
                "urls": [
                    "turn:turn-us1.example.com:3478?transport=udp",
                    "turn:turn-us1.example.com:3478?transport=tcp",
                    "turns:turn-us1.example.com:443?transport=tcp",
                ],
                "username": "1800003600:alice",
                "credential": credential,
            },
            {
                "urls": [
                    "turn:turn-eu1.example.com:3478?transport=udp",
                    "turn:turn-eu1.example.com:3478?transport=tcp",
                    "turn:turn-eu1.example.com:80?transport=tcp",
                    "turns:turn-eu1.example.com:443?transport=tcp",
                ],
                "username": "1800003600:alice",
                "credential": credential,
            },
        ])
    );
}

#[test]
fn credentials_verify_against_the_turn_core_check() {
    let ice = IceServers::new(&config(None)).unwrap();
    let now = SystemTime::now();
    let unix = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let list = ice.ice_servers("192.0.2.1".parse().unwrap(), "alice", now);
    let turn = &list[1];
    let username = turn.username.as_deref().unwrap();
    let credential = turn.credential.as_ref().unwrap().expose();
    let rest = RestCredentials::new("north");
    let expected = long_term_key(username, "iris", credential).ok();
    assert!(expected.is_some());
    assert_eq!(rest.key(username, "iris", unix), expected);
    assert_eq!(rest.key(username, "iris", unix + 86_400), expected);
    assert_eq!(rest.key(username, "iris", unix + 86_401), None, "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handed_out_credentials_allocate_on_a_running_relay() {
    let mut cfg = common::config();
    cfg.shared_secret = Some(Secret::new("north"));
    cfg.public_name = Some("localhost".to_owned());
    let handle = start(cfg.clone()).await;
    cfg.udp_listen = handle.udp_addrs().to_vec();
    cfg.tcp_listen = handle.tcp_addrs().to_vec();
    let ice = IceServers::new(&cfg).unwrap();
    let list = ice.ice_servers("127.0.0.1".parse().unwrap(), "carol", SystemTime::now());
    assert_eq!(list.len(), 2, "{list:?}");
    let turn = &list[1];
    let udp_port = handle.udp_addrs()[0].port();
    assert_eq!(
        turn.urls[0],
        format!("turn:localhost:{udp_port}?transport=udp")
    );
    let mut client = TurnClient::new(
        Conn::udp(handle.udp_addrs()[0]).await,
        turn.username.as_deref().unwrap(),
        turn.credential.as_ref().unwrap().expose(),
    );
    let relayed = tokio::time::timeout(Duration::from_secs(10), client.allocate())
        .await
        .unwrap();
    assert_eq!(relayed.ip().to_string(), "127.0.0.1");
    assert_eq!(handle.counters().allocations, 1);
    handle.shutdown().await;
}
