//! STUN and TURN attribute types and their typed values (RFC 8489 §14, RFC 8656 §18); no policy.

use crate::message::{read_u16, read_u32, TransactionId, MAGIC_COOKIE};
use crate::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// An attribute type code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeType(pub u16);

impl AttributeType {
    /// MAPPED-ADDRESS (RFC 8489 §14.1).
    pub const MAPPED_ADDRESS: Self = Self(0x0001);
    /// USERNAME (RFC 8489 §14.3).
    pub const USERNAME: Self = Self(0x0006);
    /// MESSAGE-INTEGRITY (RFC 8489 §14.5).
    pub const MESSAGE_INTEGRITY: Self = Self(0x0008);
    /// ERROR-CODE (RFC 8489 §14.8).
    pub const ERROR_CODE: Self = Self(0x0009);
    /// UNKNOWN-ATTRIBUTES (RFC 8489 §14.9).
    pub const UNKNOWN_ATTRIBUTES: Self = Self(0x000A);
    /// CHANNEL-NUMBER (RFC 8656 §18.1).
    pub const CHANNEL_NUMBER: Self = Self(0x000C);
    /// LIFETIME (RFC 8656 §18.2).
    pub const LIFETIME: Self = Self(0x000D);
    /// XOR-PEER-ADDRESS (RFC 8656 §18.3).
    pub const XOR_PEER_ADDRESS: Self = Self(0x0012);
    /// DATA (RFC 8656 §18.4).
    pub const DATA: Self = Self(0x0013);
    /// REALM (RFC 8489 §14.9).
    pub const REALM: Self = Self(0x0014);
    /// NONCE (RFC 8489 §14.10).
    pub const NONCE: Self = Self(0x0015);
    /// XOR-RELAYED-ADDRESS (RFC 8656 §18.5).
    pub const XOR_RELAYED_ADDRESS: Self = Self(0x0016);
    /// REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6).
    pub const REQUESTED_ADDRESS_FAMILY: Self = Self(0x0017);
    /// EVEN-PORT (RFC 8656 §18.7).
    pub const EVEN_PORT: Self = Self(0x0018);
    /// REQUESTED-TRANSPORT (RFC 8656 §18.8).
    pub const REQUESTED_TRANSPORT: Self = Self(0x0019);
    /// DONT-FRAGMENT (RFC 8656 §18.9).
    pub const DONT_FRAGMENT: Self = Self(0x001A);
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
    pub const MESSAGE_INTEGRITY_SHA256: Self = Self(0x001C);
    /// PASSWORD-ALGORITHM (RFC 8489 §14.12).
    pub const PASSWORD_ALGORITHM: Self = Self(0x001D);
    /// USERHASH (RFC 8489 §14.4).
    pub const USERHASH: Self = Self(0x001E);
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2).
    pub const XOR_MAPPED_ADDRESS: Self = Self(0x0020);
    /// RESERVATION-TOKEN (RFC 8656 §18.10).
    pub const RESERVATION_TOKEN: Self = Self(0x0022);
    /// PRIORITY (RFC 8445).
    pub const PRIORITY: Self = Self(0x0024);
    /// USE-CANDIDATE (RFC 8445).
    pub const USE_CANDIDATE: Self = Self(0x0025);
    /// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11).
    pub const ADDITIONAL_ADDRESS_FAMILY: Self = Self(0x8000);
    /// ADDRESS-ERROR-CODE (RFC 8656 §18.12).
    pub const ADDRESS_ERROR_CODE: Self = Self(0x8001);
    /// PASSWORD-ALGORITHMS (RFC 8489 §14.11).
    pub const PASSWORD_ALGORITHMS: Self = Self(0x8002);
    /// ALTERNATE-DOMAIN (RFC 8489 §14.16).
    pub const ALTERNATE_DOMAIN: Self = Self(0x8003);
    /// ICMP (RFC 8656 §18.13).
    pub const ICMP: Self = Self(0x8004);
    /// SOFTWARE (RFC 8489 §14.14).
    pub const SOFTWARE: Self = Self(0x8022);
    /// ALTERNATE-SERVER (RFC 8489 §14.15).
    pub const ALTERNATE_SERVER: Self = Self(0x8023);
    /// FINGERPRINT (RFC 8489 §14.7).
    pub const FINGERPRINT: Self = Self(0x8028);
    /// ICE-CONTROLLED (RFC 8445).
    pub const ICE_CONTROLLED: Self = Self(0x8029);
    /// ICE-CONTROLLING (RFC 8445).
    pub const ICE_CONTROLLING: Self = Self(0x802A);

    /// Types 0x0000–0x7FFF must be understood by the receiver (RFC 8489 §14).
    pub fn is_comprehension_required(self) -> bool {
        self.0 < 0x8000
    }
}

/// Address family for REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY and address attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4 (0x01).
    V4,
    /// IPv6 (0x02).
    V6,
}

impl AddressFamily {
    /// The family of `addr`.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddressFamily::V4,
            IpAddr::V6(_) => AddressFamily::V6,
        }
    }

    fn code(self) -> u8 {
        match self {
            AddressFamily::V4 => 0x01,
            AddressFamily::V6 => 0x02,
        }
    }

    fn from_code(c: u8) -> Result<Self, Error> {
        match c {
            0x01 => Ok(AddressFamily::V4),
            0x02 => Ok(AddressFamily::V6),
            other => Err(Error::UnknownAddressFamily(other)),
        }
    }
}

/// ERROR-CODE value: a code 300–699 and a reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode<'a> {
    /// The numeric code (class × 100 + number).
    pub code: u16,
    /// The reason phrase.
    pub reason: &'a str,
}

/// UNKNOWN-ATTRIBUTES value: a list of 16-bit types, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeList<'a>(&'a [u8]);

impl<'a> AttributeList<'a> {
    /// The encoded list.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The listed types.
    pub fn iter(&self) -> impl Iterator<Item = AttributeType> + 'a {
        self.0
            .chunks_exact(2)
            .map(|c| AttributeType(u16::from_be_bytes([c[0], c[1]])))
    }
}

/// An attribute as found on the wire: type and unpadded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// The type.
    pub typ: AttributeType,
    /// The value, without padding.
    pub value: &'a [u8],
}

/// A decoded attribute; text and byte values borrow the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute<'a> {
    /// MAPPED-ADDRESS.
    MappedAddress(SocketAddr),
    /// XOR-MAPPED-ADDRESS.
    XorMappedAddress(SocketAddr),
    /// XOR-PEER-ADDRESS.
    XorPeerAddress(SocketAddr),
    /// XOR-RELAYED-ADDRESS.
    XorRelayedAddress(SocketAddr),
    /// USERNAME (< 513 bytes).
    Username(&'a str),
    /// REALM (< 763 bytes).
    Realm(&'a str),
    /// NONCE (< 763 bytes).
    Nonce(&'a str),
    /// SOFTWARE (< 763 bytes).
    Software(&'a str),
    /// ERROR-CODE.
    ErrorCode(ErrorCode<'a>),
    /// UNKNOWN-ATTRIBUTES.
    UnknownAttributes(AttributeList<'a>),
    /// MESSAGE-INTEGRITY (20-byte HMAC-SHA1).
    MessageIntegrity(&'a [u8]),
    /// MESSAGE-INTEGRITY-SHA256 (16–32 bytes).
    MessageIntegritySha256(&'a [u8]),
    /// FINGERPRINT.
    Fingerprint(u32),
    /// CHANNEL-NUMBER.
    ChannelNumber(u16),
    /// LIFETIME in seconds.
    Lifetime(u32),
    /// DATA.
    Data(&'a [u8]),
    /// REQUESTED-ADDRESS-FAMILY.
    RequestedAddressFamily(AddressFamily),
    /// ADDITIONAL-ADDRESS-FAMILY.
    AdditionalAddressFamily(AddressFamily),
    /// EVEN-PORT with its R (reserve next port) bit.
    EvenPort(bool),
    /// REQUESTED-TRANSPORT protocol number.
    RequestedTransport(u8),
    /// DONT-FRAGMENT.
    DontFragment,
    /// RESERVATION-TOKEN.
    ReservationToken([u8; 8]),
    /// Any other attribute, undecoded.
    Other {
        /// The type.
        typ: AttributeType,
        /// The value.
        value: &'a [u8],
    },
}

const MAX_USERNAME: usize = 512;
const MAX_TEXT: usize = 763;

fn text(typ: AttributeType, value: &[u8], max: usize) -> Result<&str, Error> {
    if value.len() > max {
        return Err(Error::InvalidText(typ.0));
    }
    std::str::from_utf8(value).map_err(|_| Error::InvalidText(typ.0))
}

fn decode_address(
    typ: AttributeType,
    v: &[u8],
    xor: Option<&TransactionId>,
) -> Result<SocketAddr, Error> {
    let family = AddressFamily::from_code(*v.get(1).ok_or(Error::MalformedAttribute(typ.0))?)?;
    let mut port = read_u16(v, 2).ok_or(Error::MalformedAttribute(typ.0))?;
    let cookie = MAGIC_COOKIE.to_be_bytes();
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match family {
        AddressFamily::V4 => {
            if v.len() != 8 {
                return Err(Error::MalformedAttribute(typ.0));
            }
            let mut a = [0u8; 4];
            a.copy_from_slice(v.get(4..8).ok_or(Error::MalformedAttribute(typ.0))?);
            if xor.is_some() {
                for (b, k) in a.iter_mut().zip(cookie.iter()) {
                    *b ^= k;
                }
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        AddressFamily::V6 => {
            if v.len() != 20 {
                return Err(Error::MalformedAttribute(typ.0));
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(v.get(4..20).ok_or(Error::MalformedAttribute(typ.0))?);
            if let Some(tid) = xor {
                for (b, k) in a.iter_mut().zip(cookie.iter().chain(tid.0.iter())) {
                    *b ^= k;
                }
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

fn encode_address(addr: &SocketAddr, xor: Option<&TransactionId>, out: &mut [u8; 24]) -> usize {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut port = addr.port();
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    out[0] = 0;
    out[2..4].copy_from_slice(&port.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[1] = AddressFamily::V4.code();
            let mut a = ip.octets();
            if xor.is_some() {
                for (b, k) in a.iter_mut().zip(cookie.iter()) {
                    *b ^= k;
                }
            }
            out[4..8].copy_from_slice(&a);
            8
        }
        IpAddr::V6(ip) => {
            out[1] = AddressFamily::V6.code();
            let mut a = ip.octets();
            if let Some(tid) = xor {
                for (b, k) in a.iter_mut().zip(cookie.iter().chain(tid.0.iter())) {
                    *b ^= k;
                }
            }
            out[4..20].copy_from_slice(&a);
            20
        }
    }
}

fn family(typ: AttributeType, v: &[u8]) -> Result<AddressFamily, Error> {
    if v.len() != 4 {
        return Err(Error::MalformedAttribute(typ.0));
    }
    AddressFamily::from_code(*v.first().ok_or(Error::MalformedAttribute(typ.0))?)
}

impl<'a> RawAttribute<'a> {
    /// Decodes the value according to its type; XOR addresses need the transaction id.
    pub fn decode(&self, tid: &TransactionId) -> Result<Attribute<'a>, Error> {
        let v = self.value;
        let t = self.typ;
        let bad = Error::MalformedAttribute(t.0);
        Ok(match t {
            AttributeType::MAPPED_ADDRESS => Attribute::MappedAddress(decode_address(t, v, None)?),
            AttributeType::XOR_MAPPED_ADDRESS => {
                Attribute::XorMappedAddress(decode_address(t, v, Some(tid))?)
            }
            AttributeType::XOR_PEER_ADDRESS => {
                Attribute::XorPeerAddress(decode_address(t, v, Some(tid))?)
            }
            AttributeType::XOR_RELAYED_ADDRESS => {
                Attribute::XorRelayedAddress(decode_address(t, v, Some(tid))?)
            }
            AttributeType::USERNAME => Attribute::Username(text(t, v, MAX_USERNAME)?),
            AttributeType::REALM => Attribute::Realm(text(t, v, MAX_TEXT)?),
            AttributeType::NONCE => Attribute::Nonce(text(t, v, MAX_TEXT)?),
            AttributeType::SOFTWARE => Attribute::Software(text(t, v, MAX_TEXT)?),
            AttributeType::ERROR_CODE => {
                let class = u16::from(*v.get(2).ok_or(bad)? & 0x07);
                let number = u16::from(*v.get(3).ok_or(bad)?);
                if !(3..=6).contains(&class) || number > 99 {
                    return Err(bad);
                }
                let reason = text(t, v.get(4..).ok_or(bad)?, MAX_TEXT)?;
                Attribute::ErrorCode(ErrorCode {
                    code: class * 100 + number,
                    reason,
                })
            }
            AttributeType::UNKNOWN_ATTRIBUTES => {
                if v.len() & 1 != 0 {
                    return Err(bad);
                }
                Attribute::UnknownAttributes(AttributeList(v))
            }
            AttributeType::MESSAGE_INTEGRITY => {
                if v.len() != 20 {
                    return Err(bad);
                }
                Attribute::MessageIntegrity(v)
            }
            AttributeType::MESSAGE_INTEGRITY_SHA256 => {
                if !(16..=32).contains(&v.len()) || v.len() & 3 != 0 {
                    return Err(bad);
                }
                Attribute::MessageIntegritySha256(v)
            }
            AttributeType::FINGERPRINT => {
                if v.len() != 4 {
                    return Err(bad);
                }
                Attribute::Fingerprint(read_u32(v, 0).ok_or(bad)?)
            }
            AttributeType::CHANNEL_NUMBER => {
                if v.len() != 4 {
                    return Err(bad);
                }
                Attribute::ChannelNumber(read_u16(v, 0).ok_or(bad)?)
            }
            AttributeType::LIFETIME => {
                if v.len() != 4 {
                    return Err(bad);
                }
                Attribute::Lifetime(read_u32(v, 0).ok_or(bad)?)
            }
            AttributeType::DATA => Attribute::Data(v),
            AttributeType::REQUESTED_ADDRESS_FAMILY => {
                Attribute::RequestedAddressFamily(family(t, v)?)
            }
            AttributeType::ADDITIONAL_ADDRESS_FAMILY => {
                Attribute::AdditionalAddressFamily(family(t, v)?)
            }
            AttributeType::EVEN_PORT => {
                if v.len() != 1 {
                    return Err(bad);
                }
                Attribute::EvenPort(v.first().is_some_and(|b| b & 0x80 != 0))
            }
            AttributeType::REQUESTED_TRANSPORT => {
                if v.len() != 4 {
                    return Err(bad);
                }
                Attribute::RequestedTransport(*v.first().ok_or(bad)?)
            }
            AttributeType::DONT_FRAGMENT => {
                if !v.is_empty() {
                    return Err(bad);
                }
                Attribute::DontFragment
            }
            AttributeType::RESERVATION_TOKEN => {
                let token: [u8; 8] = v.try_into().map_err(|_| bad)?;
                Attribute::ReservationToken(token)
            }
            typ => Attribute::Other { typ, value: v },
        })
    }
}

impl Attribute<'_> {
    /// The attribute's type code.
    pub fn typ(&self) -> AttributeType {
        match self {
            Attribute::MappedAddress(_) => AttributeType::MAPPED_ADDRESS,
            Attribute::XorMappedAddress(_) => AttributeType::XOR_MAPPED_ADDRESS,
            Attribute::XorPeerAddress(_) => AttributeType::XOR_PEER_ADDRESS,
            Attribute::XorRelayedAddress(_) => AttributeType::XOR_RELAYED_ADDRESS,
            Attribute::Username(_) => AttributeType::USERNAME,
            Attribute::Realm(_) => AttributeType::REALM,
            Attribute::Nonce(_) => AttributeType::NONCE,
            Attribute::Software(_) => AttributeType::SOFTWARE,
            Attribute::ErrorCode(_) => AttributeType::ERROR_CODE,
            Attribute::UnknownAttributes(_) => AttributeType::UNKNOWN_ATTRIBUTES,
            Attribute::MessageIntegrity(_) => AttributeType::MESSAGE_INTEGRITY,
            Attribute::MessageIntegritySha256(_) => AttributeType::MESSAGE_INTEGRITY_SHA256,
            Attribute::Fingerprint(_) => AttributeType::FINGERPRINT,
            Attribute::ChannelNumber(_) => AttributeType::CHANNEL_NUMBER,
            Attribute::Lifetime(_) => AttributeType::LIFETIME,
            Attribute::Data(_) => AttributeType::DATA,
            Attribute::RequestedAddressFamily(_) => AttributeType::REQUESTED_ADDRESS_FAMILY,
            Attribute::AdditionalAddressFamily(_) => AttributeType::ADDITIONAL_ADDRESS_FAMILY,
            Attribute::EvenPort(_) => AttributeType::EVEN_PORT,
            Attribute::RequestedTransport(_) => AttributeType::REQUESTED_TRANSPORT,
            Attribute::DontFragment => AttributeType::DONT_FRAGMENT,
            Attribute::ReservationToken(_) => AttributeType::RESERVATION_TOKEN,
            Attribute::Other { typ, .. } => *typ,
        }
    }

    /// Encodes fixed-size values into `out`; `None` for variable-size ones.
    pub(crate) fn encode_small(&self, tid: &TransactionId, out: &mut [u8; 24]) -> Option<usize> {
        Some(match self {
            Attribute::MappedAddress(a) => encode_address(a, None, out),
            Attribute::XorMappedAddress(a)
            | Attribute::XorPeerAddress(a)
            | Attribute::XorRelayedAddress(a) => encode_address(a, Some(tid), out),
            Attribute::Fingerprint(v) | Attribute::Lifetime(v) => {
                out[..4].copy_from_slice(&v.to_be_bytes());
                4
            }
            Attribute::ChannelNumber(c) => {
                out[..2].copy_from_slice(&c.to_be_bytes());
                out[2..4].copy_from_slice(&[0, 0]);
                4
            }
            Attribute::RequestedAddressFamily(f) | Attribute::AdditionalAddressFamily(f) => {
                out[..4].copy_from_slice(&[f.code(), 0, 0, 0]);
                4
            }
            Attribute::EvenPort(r) => {
                out[0] = if *r { 0x80 } else { 0 };
                1
            }
            Attribute::RequestedTransport(p) => {
                out[..4].copy_from_slice(&[*p, 0, 0, 0]);
                4
            }
            Attribute::DontFragment => 0,
            Attribute::ReservationToken(t) => {
                out[..8].copy_from_slice(t);
                8
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Class, Message, MessageBuilder, Method};

    fn roundtrip(a: Attribute<'_>) {
        let tid = TransactionId([0xa5; 12]);
        let mut b = MessageBuilder::new(Class::Request, Method::ALLOCATE, tid);
        b.add(&a);
        let bytes = b.finish().unwrap_or_default();
        let m = Message::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.attribute(a.typ()), Ok(Some(a)));
    }

    #[test]
    fn rfc8656_18_turn_attributes_roundtrip() {
        roundtrip(Attribute::ChannelNumber(0x4001));
        roundtrip(Attribute::Lifetime(600));
        roundtrip(Attribute::XorPeerAddress(
            "192.0.2.15:9000".parse().unwrap_or_else(|_| unreachable!()),
        ));
        roundtrip(Attribute::XorRelayedAddress(
            "[2001:db8::1]:49152"
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        ));
        roundtrip(Attribute::Data(b"hello world"));
        roundtrip(Attribute::RequestedAddressFamily(AddressFamily::V6));
        roundtrip(Attribute::AdditionalAddressFamily(AddressFamily::V6));
        roundtrip(Attribute::EvenPort(true));
        roundtrip(Attribute::EvenPort(false));
        roundtrip(Attribute::RequestedTransport(17));
        roundtrip(Attribute::DontFragment);
        roundtrip(Attribute::ReservationToken([1, 2, 3, 4, 5, 6, 7, 8]));
        roundtrip(Attribute::ErrorCode(ErrorCode {
            code: 438,
            reason: "Stale Nonce",
        }));
        roundtrip(Attribute::Software("iris"));
        roundtrip(Attribute::Nonce("abc"));
    }

    #[test]
    fn rfc8489_14_rejects_malformed_values() {
        let tid = TransactionId([0; 12]);
        let raw = |typ, value| RawAttribute { typ, value };
        assert!(raw(AttributeType::LIFETIME, &[0, 0][..])
            .decode(&tid)
            .is_err());
        assert!(raw(
            AttributeType::XOR_PEER_ADDRESS,
            &[0, 3, 0, 0, 1, 2, 3, 4][..]
        )
        .decode(&tid)
        .is_err());
        assert!(
            raw(AttributeType::XOR_PEER_ADDRESS, &[0, 1, 0, 0, 1, 2][..])
                .decode(&tid)
                .is_err()
        );
        assert!(raw(AttributeType::USERNAME, &[0xff, 0xfe][..])
            .decode(&tid)
            .is_err());
        assert!(raw(AttributeType::ERROR_CODE, &[0, 0, 9, 0][..])
            .decode(&tid)
            .is_err());
        assert!(raw(AttributeType::EVEN_PORT, &[][..]).decode(&tid).is_err());
        assert!(raw(AttributeType::USERNAME, &[b'a'; 600][..])
            .decode(&tid)
            .is_err());
    }
}
