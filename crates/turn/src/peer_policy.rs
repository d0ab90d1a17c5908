//! Which peer addresses a relay may talk to: safe default deny rules plus an allow-list; no I/O.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Decides whether the relay may exchange packets with a peer IP address.
///
/// Injected into the server (Pion's "permission handler"); closures `Fn(IpAddr) -> bool` work.
pub trait PeerPolicy: Send + Sync {
    /// True when `peer` may be given a permission and receive relayed packets.
    fn permits(&self, peer: IpAddr) -> bool;
}

impl<F: Fn(IpAddr) -> bool + Send + Sync> PeerPolicy for F {
    fn permits(&self, peer: IpAddr) -> bool {
        self(peer)
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why a CIDR string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(pub String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid CIDR {:?}", self.0)
    }
}

impl std::error::Error for CidrError {}

impl Cidr {
    /// A network from an address and prefix length; `None` if the prefix is too long.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// True when `ip` is inside the network (IPv4 and IPv6 never match each other).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CidrError(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => {
                let addr: IpAddr = a.trim().parse().map_err(|_| err())?;
                (addr, p.trim().parse::<u8>().map_err(|_| err())?)
            }
            None => {
                let addr: IpAddr = s.trim().parse().map_err(|_| err())?;
                (addr, if addr.is_ipv4() { 32 } else { 128 })
            }
        };
        Cidr::new(addr, prefix).ok_or_else(err)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> (u32, u8) {
    (u32::from_be_bytes([a, b, c, d]), prefix)
}

/// IPv4 ranges a relay must never reach (RFC 6890 special-purpose, private, CGNAT, multicast…).
const DENIED_V4: &[(u32, u8)] = &[
    v4(0, 0, 0, 0, 8),       // "this network"
    v4(10, 0, 0, 0, 8),      // RFC 1918
    v4(100, 64, 0, 0, 10),   // CGNAT, RFC 6598
    v4(127, 0, 0, 0, 8),     // loopback
    v4(169, 254, 0, 0, 16),  // link-local, incl. 169.254.169.254 metadata
    v4(172, 16, 0, 0, 12),   // RFC 1918
    v4(192, 0, 0, 0, 24),    // IETF protocol assignments
    v4(192, 0, 2, 0, 24),    // TEST-NET-1
    v4(192, 31, 196, 0, 24), // AS112
    v4(192, 52, 193, 0, 24), // AMT
    v4(192, 88, 99, 0, 24),  // 6to4 relay anycast
    v4(192, 168, 0, 0, 16),  // RFC 1918
    v4(192, 175, 48, 0, 24), // direct delegation AS112
    v4(198, 18, 0, 0, 15),   // benchmarking
    v4(198, 51, 100, 0, 24), // TEST-NET-2
    v4(203, 0, 113, 0, 24),  // TEST-NET-3
    v4(224, 0, 0, 0, 4),     // multicast
    v4(240, 0, 0, 0, 4),     // reserved, incl. 255.255.255.255 broadcast
];

fn denied_v4(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    DENIED_V4.iter().any(|&(net, prefix)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        ip & mask == net & mask
    })
}

fn v4_at(ip: u128, shift: u32) -> Ipv4Addr {
    Ipv4Addr::from(((ip >> shift) & 0xffff_ffff) as u32)
}

fn denied_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let seg = ip.segments();
    let top16 = seg[0];
    if bits >> 32 == 0 {
        // ::, ::1 and IPv4-compatible ::a.b.c.d (deprecated): never a real peer.
        return true;
    }
    if bits >> 32 == 0xffff {
        // IPv4-mapped ::ffff:a.b.c.d: the socket would reach the embedded IPv4 address.
        return true;
    }
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        // NAT64 well-known prefix 64:ff9b::/96 reaches the embedded IPv4 address.
        return denied_v4(v4_at(bits, 0));
    }
    if bits >> 80 == 0x0064_ff9b_0001 {
        return true; // 64:ff9b:1::/48, local-use NAT64
    }
    if top16 == 0x2002 {
        // 6to4 2002:a.b.c.d::/48
        return denied_v4(v4_at(bits, 80));
    }
    if seg[0] == 0x2001 && seg[1] == 0x0000 {
        // Teredo 2001::/32: server at bits 64..96, client = last 32 bits inverted.
        let server = v4_at(bits, 64);
        let client = Ipv4Addr::from(!((bits & 0xffff_ffff) as u32));
        return denied_v4(server) || denied_v4(client);
    }
    if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        return true; // documentation 2001:db8::/32
    }
    if seg[0] == 0x2001 && (seg[1] & 0xfff0) == 0x0010 {
        return true; // ORCHID 2001:10::/28
    }
    if seg[0] == 0x2001 && seg[1] == 0x0002 && seg[2] == 0 {
        return true; // benchmarking 2001:2::/48
    }
    if seg[0] == 0x0100 && seg[1] == 0 && seg[2] == 0 && seg[3] == 0 {
        return true; // discard-only 100::/64
    }
    (top16 & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (top16 & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (top16 & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
        || (top16 & 0xff00) == 0xff00 // multicast ff00::/8
}

/// True for addresses in the built-in deny list (without allow-list or server addresses).
pub fn is_denied_by_default(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => denied_v4(v4),
        IpAddr::V6(v6) => denied_v6(v6),
    }
}

/// The default policy: deny special-purpose ranges and the server's own addresses, unless an
/// allow-list entry covers the peer.
#[derive(Debug, Clone, Default)]
pub struct DefaultPeerPolicy {
    /// Networks that are always permitted, even if otherwise denied.
    pub allow: Vec<Cidr>,
    /// Networks that are always denied (checked after `allow`).
    pub deny: Vec<Cidr>,
    /// The server's own addresses (listeners and relays): denied to prevent loops.
    pub server_addresses: Vec<IpAddr>,
}

impl PeerPolicy for DefaultPeerPolicy {
    fn permits(&self, peer: IpAddr) -> bool {
        if self.allow.iter().any(|c| c.contains(peer)) {
            return true;
        }
        !(is_denied_by_default(peer)
            || self.deny.iter().any(|c| c.contains(peer))
            || self.server_addresses.contains(&peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("bad ip {s}"))
    }

    #[test]
    fn cidr_parse_and_contains() {
        let c: Cidr = "127.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(c.contains(ip("127.1.2.3")));
        assert!(!c.contains(ip("128.0.0.1")));
        assert!(!c.contains(ip("::1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(all.contains(ip("8.8.8.8")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        let h: Cidr = "2001:db8::1".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(h.contains(ip("2001:db8::1")) && !h.contains(ip("2001:db8::2")));
    }

    #[test]
    fn public_addresses_are_permitted() {
        let p = DefaultPeerPolicy::default();
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "2a00:1450::1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(p.permits(ip(a)), "{a}");
        }
    }
}
