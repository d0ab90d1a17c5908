//! STUN message header, method/class and the borrowed message view (RFC 8489 §5-§6); no I/O.

use crate::attribute::{AddressFamily, Attribute, AttributeType, ErrorCode, RawAttribute};
use crate::integrity;
use crate::Error;
use std::net::SocketAddr;

/// The fixed magic cookie of RFC 5389 / RFC 8489.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the STUN header.
pub const HEADER_LEN: usize = 20;
/// Largest value a 16-bit length field can describe.
const MAX_BODY_LEN: usize = u16::MAX as usize;

/// The 96-bit transaction identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TransactionId(pub [u8; 12]);

/// Message class (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A request: expects a success or error response.
    Request,
    /// An indication: no response.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

/// Message method (12 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    /// Binding (RFC 8489).
    pub const BINDING: Method = Method(0x001);
    /// Allocate (RFC 8656 §7).
    pub const ALLOCATE: Method = Method(0x003);
    /// Refresh (RFC 8656 §8).
    pub const REFRESH: Method = Method(0x004);
    /// Send indication (RFC 8656 §11).
    pub const SEND: Method = Method(0x006);
    /// Data indication (RFC 8656 §11).
    pub const DATA: Method = Method(0x007);
    /// CreatePermission (RFC 8656 §10).
    pub const CREATE_PERMISSION: Method = Method(0x008);
    /// ChannelBind (RFC 8656 §12).
    pub const CHANNEL_BIND: Method = Method(0x009);
}

fn encode_type(class: Class, method: Method) -> u16 {
    let m = method.0 & 0x0fff;
    let c = match class {
        Class::Request => 0b00,
        Class::Indication => 0b01,
        Class::Success => 0b10,
        Class::Error => 0b11,
    };
    (m & 0x000f) | ((m & 0x0070) << 1) | ((m & 0x0f80) << 2) | ((c & 0b01) << 4) | ((c & 0b10) << 7)
}

fn decode_type(t: u16) -> (Class, Method) {
    let m = (t & 0x000f) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0f80);
    let c = ((t >> 4) & 0b01) | ((t >> 7) & 0b10);
    let class = match c {
        0b00 => Class::Request,
        0b01 => Class::Indication,
        0b10 => Class::Success,
        _ => Class::Error,
    };
    (class, Method(m))
}

pub(crate) fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

pub(crate) fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_be_bytes(a))
}

/// A parsed STUN message borrowing the bytes it was read from.
///
/// Parsing checks the header and the attribute framing once; attribute values are decoded on
/// demand. Attributes after MESSAGE-INTEGRITY (other than MESSAGE-INTEGRITY-SHA256 and
/// FINGERPRINT) and after FINGERPRINT are ignored, as RFC 8489 §14.5 requires.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    class: Class,
    method: Method,
    transaction_id: TransactionId,
    integrity: Option<usize>,
    integrity_sha256: Option<usize>,
    fingerprint: Option<usize>,
}

impl<'a> Message<'a> {
    /// Parses one STUN message at the start of `bytes`; trailing bytes are ignored.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let header = bytes.get(..HEADER_LEN).ok_or(Error::Truncated)?;
        let t = read_u16(header, 0).ok_or(Error::Truncated)?;
        if t & 0xc000 != 0 {
            return Err(Error::NotStun);
        }
        let len = usize::from(read_u16(header, 2).ok_or(Error::Truncated)?);
        if read_u32(header, 4) != Some(MAGIC_COOKIE) {
            return Err(Error::BadMagicCookie);
        }
        if len & 3 != 0 {
            return Err(Error::UnalignedLength);
        }
        let bytes = bytes.get(..HEADER_LEN + len).ok_or(Error::Truncated)?;
        let mut tid = [0u8; 12];
        tid.copy_from_slice(header.get(8..20).ok_or(Error::Truncated)?);
        let (class, method) = decode_type(t);
        let mut message = Message {
            bytes,
            class,
            method,
            transaction_id: TransactionId(tid),
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
        };
        let mut offset = HEADER_LEN;
        while offset < bytes.len() {
            let typ = read_u16(bytes, offset).ok_or(Error::MalformedAttributes)?;
            let vlen = usize::from(read_u16(bytes, offset + 2).ok_or(Error::MalformedAttributes)?);
            let next = offset + 4 + ((vlen + 3) & !3);
            if next > bytes.len() {
                return Err(Error::MalformedAttributes);
            }
            if message.fingerprint.is_none() {
                match AttributeType(typ) {
                    AttributeType::MESSAGE_INTEGRITY
                        if message.integrity.is_none() && message.integrity_sha256.is_none() =>
                    {
                        if vlen != 20 {
                            return Err(Error::MalformedAttribute(typ));
                        }
                        message.integrity = Some(offset);
                    }
                    AttributeType::MESSAGE_INTEGRITY_SHA256
                        if message.integrity_sha256.is_none() =>
                    {
                        if !(16..=32).contains(&vlen) || vlen & 3 != 0 {
                            return Err(Error::MalformedAttribute(typ));
                        }
                        message.integrity_sha256 = Some(offset);
                    }
                    AttributeType::FINGERPRINT => {
                        if vlen != 4 {
                            return Err(Error::MalformedAttribute(typ));
                        }
                        message.fingerprint = Some(offset);
                    }
                    _ => {}
                }
            }
            offset = next;
        }
        Ok(message)
    }

    /// The message class.
    pub fn class(&self) -> Class {
        self.class
    }

    /// The message method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }

    /// The bytes of this message (header and attributes, without trailing bytes).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Total length of the message on the wire.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for a message with no attributes.
    pub fn is_empty(&self) -> bool {
        self.bytes.len() == HEADER_LEN
    }

    /// Offset of the MESSAGE-INTEGRITY attribute, if present.
    pub(crate) fn integrity_offset(&self) -> Option<usize> {
        self.integrity
    }

    /// Offset of the MESSAGE-INTEGRITY-SHA256 attribute, if present.
    pub(crate) fn integrity_sha256_offset(&self) -> Option<usize> {
        self.integrity_sha256
    }

    /// Offset of the FINGERPRINT attribute, if present.
    pub(crate) fn fingerprint_offset(&self) -> Option<usize> {
        self.fingerprint
    }

    /// True when the message carries MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some() || self.integrity_sha256.is_some()
    }

    /// True when the message carries FINGERPRINT.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// Verifies MESSAGE-INTEGRITY-SHA256 if present, else MESSAGE-INTEGRITY, with `key`.
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), Error> {
        integrity::verify(self, key)
    }

    /// Verifies FINGERPRINT; Ok(()) if there is none.
    pub fn verify_fingerprint(&self) -> Result<(), Error> {
        integrity::verify_fingerprint(self)
    }

    /// The attributes that count: none after FINGERPRINT, and after MESSAGE-INTEGRITY only
    /// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            bytes: self.bytes,
            offset: HEADER_LEN,
            after_integrity: false,
            done: false,
        }
    }

    /// The first attribute of type `typ`, undecoded.
    pub fn raw_attribute(&self, typ: AttributeType) -> Option<RawAttribute<'a>> {
        self.attributes().find(|a| a.typ == typ)
    }

    /// The first attribute of type `typ`, decoded.
    pub fn attribute(&self, typ: AttributeType) -> Result<Option<Attribute<'a>>, Error> {
        match self.raw_attribute(typ) {
            Some(raw) => raw.decode(&self.transaction_id).map(Some),
            None => Ok(None),
        }
    }

    /// Comprehension-required attribute types (0x0000–0x7FFF) that `known` does not accept.
    pub fn unknown_comprehension_required(
        &self,
        known: impl Fn(AttributeType) -> bool,
    ) -> Vec<AttributeType> {
        self.attributes()
            .map(|a| a.typ)
            .filter(|t| t.is_comprehension_required() && !known(*t))
            .collect()
    }

    fn text(&self, typ: AttributeType) -> Result<Option<&'a str>, Error> {
        match self.attribute(typ)? {
            Some(
                Attribute::Username(s)
                | Attribute::Realm(s)
                | Attribute::Nonce(s)
                | Attribute::Software(s),
            ) => Ok(Some(s)),
            _ => Ok(None),
        }
    }

    /// USERNAME.
    pub fn username(&self) -> Result<Option<&'a str>, Error> {
        self.text(AttributeType::USERNAME)
    }

    /// REALM.
    pub fn realm(&self) -> Result<Option<&'a str>, Error> {
        self.text(AttributeType::REALM)
    }

    /// NONCE.
    pub fn nonce(&self) -> Result<Option<&'a str>, Error> {
        self.text(AttributeType::NONCE)
    }

    fn raw_value(&self, typ: AttributeType) -> Result<Option<&'a [u8]>, Error> {
        match self.attribute(typ)? {
            Some(Attribute::Other { value, .. }) => Ok(Some(value)),
            _ => Ok(None),
        }
    }

    /// USERHASH (RFC 8489 §14.4): 32 bytes.
    pub fn userhash(&self) -> Result<Option<&'a [u8]>, Error> {
        match self.raw_value(AttributeType::USERHASH)? {
            Some(v) if v.len() != 32 => Err(Error::MalformedAttribute(AttributeType::USERHASH.0)),
            v => Ok(v),
        }
    }

    /// PASSWORD-ALGORITHMS (RFC 8489 §14.11), undecoded (servers compare it as sent).
    pub fn password_algorithms(&self) -> Result<Option<&'a [u8]>, Error> {
        self.raw_value(AttributeType::PASSWORD_ALGORITHMS)
    }

    /// The algorithm code of PASSWORD-ALGORITHM (RFC 8489 §14.12).
    pub fn password_algorithm(&self) -> Result<Option<u16>, Error> {
        self.raw_value(AttributeType::PASSWORD_ALGORITHM)?
            .map(crate::password::decode_algorithm)
            .transpose()
    }

    /// True when the message carries MESSAGE-INTEGRITY-SHA256.
    pub fn has_integrity_sha256(&self) -> bool {
        self.integrity_sha256.is_some()
    }

    /// SOFTWARE.
    pub fn software(&self) -> Result<Option<&'a str>, Error> {
        self.text(AttributeType::SOFTWARE)
    }

    /// ERROR-CODE.
    pub fn error_code(&self) -> Result<Option<ErrorCode<'a>>, Error> {
        match self.attribute(AttributeType::ERROR_CODE)? {
            Some(Attribute::ErrorCode(e)) => Ok(Some(e)),
            _ => Ok(None),
        }
    }

    fn address(&self, typ: AttributeType) -> Result<Option<SocketAddr>, Error> {
        match self.attribute(typ)? {
            Some(
                Attribute::XorMappedAddress(a)
                | Attribute::XorPeerAddress(a)
                | Attribute::XorRelayedAddress(a)
                | Attribute::MappedAddress(a),
            ) => Ok(Some(a)),
            _ => Ok(None),
        }
    }

    /// XOR-MAPPED-ADDRESS.
    pub fn xor_mapped_address(&self) -> Result<Option<SocketAddr>, Error> {
        self.address(AttributeType::XOR_MAPPED_ADDRESS)
    }

    /// The first XOR-RELAYED-ADDRESS.
    pub fn xor_relayed_address(&self) -> Result<Option<SocketAddr>, Error> {
        self.address(AttributeType::XOR_RELAYED_ADDRESS)
    }

    /// The first XOR-PEER-ADDRESS.
    pub fn xor_peer_address(&self) -> Result<Option<SocketAddr>, Error> {
        self.address(AttributeType::XOR_PEER_ADDRESS)
    }

    /// Every XOR-PEER-ADDRESS (CreatePermission may carry several).
    pub fn xor_peer_addresses(&self) -> impl Iterator<Item = Result<SocketAddr, Error>> + 'a {
        let tid = self.transaction_id;
        self.attributes()
            .filter(|a| a.typ == AttributeType::XOR_PEER_ADDRESS)
            .map(move |a| match a.decode(&tid)? {
                Attribute::XorPeerAddress(addr) => Ok(addr),
                _ => Err(Error::MalformedAttribute(a.typ.0)),
            })
    }

    /// LIFETIME in seconds.
    pub fn lifetime(&self) -> Result<Option<u32>, Error> {
        match self.attribute(AttributeType::LIFETIME)? {
            Some(Attribute::Lifetime(l)) => Ok(Some(l)),
            _ => Ok(None),
        }
    }

    /// CHANNEL-NUMBER.
    pub fn channel_number(&self) -> Result<Option<u16>, Error> {
        match self.attribute(AttributeType::CHANNEL_NUMBER)? {
            Some(Attribute::ChannelNumber(c)) => Ok(Some(c)),
            _ => Ok(None),
        }
    }

    /// DATA.
    pub fn data(&self) -> Result<Option<&'a [u8]>, Error> {
        match self.attribute(AttributeType::DATA)? {
            Some(Attribute::Data(d)) => Ok(Some(d)),
            _ => Ok(None),
        }
    }

    /// REQUESTED-TRANSPORT protocol number (17 = UDP).
    pub fn requested_transport(&self) -> Result<Option<u8>, Error> {
        match self.attribute(AttributeType::REQUESTED_TRANSPORT)? {
            Some(Attribute::RequestedTransport(p)) => Ok(Some(p)),
            _ => Ok(None),
        }
    }

    /// REQUESTED-ADDRESS-FAMILY.
    pub fn requested_address_family(&self) -> Result<Option<AddressFamily>, Error> {
        match self.attribute(AttributeType::REQUESTED_ADDRESS_FAMILY)? {
            Some(Attribute::RequestedAddressFamily(f)) => Ok(Some(f)),
            _ => Ok(None),
        }
    }

    /// ADDITIONAL-ADDRESS-FAMILY.
    pub fn additional_address_family(&self) -> Result<Option<AddressFamily>, Error> {
        match self.attribute(AttributeType::ADDITIONAL_ADDRESS_FAMILY)? {
            Some(Attribute::AdditionalAddressFamily(f)) => Ok(Some(f)),
            _ => Ok(None),
        }
    }

    /// EVEN-PORT: `Some(reserve_next)` when present.
    pub fn even_port(&self) -> Result<Option<bool>, Error> {
        match self.attribute(AttributeType::EVEN_PORT)? {
            Some(Attribute::EvenPort(r)) => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    /// RESERVATION-TOKEN.
    pub fn reservation_token(&self) -> Result<Option<[u8; 8]>, Error> {
        match self.attribute(AttributeType::RESERVATION_TOKEN)? {
            Some(Attribute::ReservationToken(t)) => Ok(Some(t)),
            _ => Ok(None),
        }
    }

    /// True when DONT-FRAGMENT is present.
    pub fn dont_fragment(&self) -> bool {
        self.raw_attribute(AttributeType::DONT_FRAGMENT).is_some()
    }
}

/// Iterator over the attributes of a [`Message`] that count.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    bytes: &'a [u8],
    offset: usize,
    after_integrity: bool,
    done: bool,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = RawAttribute<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let typ = AttributeType(read_u16(self.bytes, self.offset)?);
            let len = usize::from(read_u16(self.bytes, self.offset + 2)?);
            let start = self.offset + 4;
            let value = self.bytes.get(start..start + len)?;
            self.offset = start + ((len + 3) & !3);
            match typ {
                AttributeType::FINGERPRINT => {
                    self.done = true;
                    return Some(RawAttribute { typ, value });
                }
                AttributeType::MESSAGE_INTEGRITY | AttributeType::MESSAGE_INTEGRITY_SHA256 => {
                    self.after_integrity = true;
                    return Some(RawAttribute { typ, value });
                }
                _ if self.after_integrity => continue,
                _ => return Some(RawAttribute { typ, value }),
            }
        }
        None
    }
}

/// Builds a STUN message into an owned buffer.
///
/// Attributes are appended in call order; MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT must come
/// last, in that order. A message that would outgrow the 16-bit length makes
/// [`MessageBuilder::finish`] fail with [`Error::TooLarge`].
#[derive(Debug)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    transaction_id: TransactionId,
    too_large: bool,
}

impl MessageBuilder {
    /// Starts a message in a fresh buffer.
    pub fn new(class: Class, method: Method, transaction_id: TransactionId) -> Self {
        Self::with_buffer(Vec::with_capacity(128), class, method, transaction_id)
    }

    /// Starts a message in `buf` (cleared first), to reuse its allocation.
    pub fn with_buffer(
        mut buf: Vec<u8>,
        class: Class,
        method: Method,
        transaction_id: TransactionId,
    ) -> Self {
        buf.clear();
        buf.extend_from_slice(&encode_type(class, method).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&transaction_id.0);
        MessageBuilder {
            buf,
            transaction_id,
            too_large: false,
        }
    }

    /// The transaction id of the message being built.
    pub fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }

    fn set_length(&mut self, body_len: usize) {
        let len = u16::try_from(body_len).unwrap_or(u16::MAX);
        if let Some(l) = self.buf.get_mut(2..4) {
            l.copy_from_slice(&len.to_be_bytes());
        }
    }

    /// Appends an attribute given its type and raw value (padding added).
    pub fn add_raw(&mut self, typ: AttributeType, value: &[u8]) -> &mut Self {
        let Ok(len) = u16::try_from(value.len()) else {
            self.too_large = true;
            return self;
        };
        let padded = (value.len() + 3) & !3;
        if self.buf.len() - HEADER_LEN + 4 + padded > MAX_BODY_LEN {
            self.too_large = true;
            return self;
        }
        self.buf.extend_from_slice(&typ.0.to_be_bytes());
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(self.buf.len() + padded - value.len(), 0);
        let body = self.buf.len() - HEADER_LEN;
        self.set_length(body);
        self
    }

    /// Appends a typed attribute.
    pub fn add(&mut self, attribute: &Attribute<'_>) -> &mut Self {
        let mut value = [0u8; 24];
        match attribute.encode_small(&self.transaction_id, &mut value) {
            Some(n) => {
                let typ = attribute.typ();
                self.add_raw(typ, value.get(..n).unwrap_or_default())
            }
            None => match attribute {
                Attribute::Username(s)
                | Attribute::Realm(s)
                | Attribute::Nonce(s)
                | Attribute::Software(s) => self.add_raw(attribute.typ(), s.as_bytes()),
                Attribute::Data(d) => self.add_raw(AttributeType::DATA, d),
                Attribute::MessageIntegrity(d) | Attribute::MessageIntegritySha256(d) => {
                    self.add_raw(attribute.typ(), d)
                }
                Attribute::ErrorCode(e) => {
                    let mut v = Vec::with_capacity(4 + e.reason.len());
                    v.extend_from_slice(&[0, 0, (e.code / 100) as u8 & 0x07, (e.code % 100) as u8]);
                    v.extend_from_slice(e.reason.as_bytes());
                    self.add_raw(AttributeType::ERROR_CODE, &v)
                }
                Attribute::UnknownAttributes(list) => {
                    self.add_raw(AttributeType::UNKNOWN_ATTRIBUTES, list.as_bytes())
                }
                Attribute::Other { typ, value } => self.add_raw(*typ, value),
                _ => {
                    self.too_large = true;
                    self
                }
            },
        }
    }

    /// Appends UNKNOWN-ATTRIBUTES listing `types`.
    pub fn add_unknown_attributes(&mut self, types: &[AttributeType]) -> &mut Self {
        let mut v = Vec::with_capacity(types.len() * 2);
        for t in types {
            v.extend_from_slice(&t.0.to_be_bytes());
        }
        self.add_raw(AttributeType::UNKNOWN_ATTRIBUTES, &v)
    }

    /// Appends MESSAGE-INTEGRITY (HMAC-SHA1 with `key`).
    pub fn add_message_integrity(&mut self, key: &[u8]) -> &mut Self {
        let body = self.buf.len() - HEADER_LEN + 24;
        self.set_length(body);
        let mac = integrity::hmac_sha1(key, &[&self.buf]);
        self.add_raw(AttributeType::MESSAGE_INTEGRITY, &mac)
    }

    /// Appends MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256 with `key`, untruncated).
    pub fn add_message_integrity_sha256(&mut self, key: &[u8]) -> &mut Self {
        let body = self.buf.len() - HEADER_LEN + 36;
        self.set_length(body);
        let mac = integrity::hmac_sha256(key, &[&self.buf]);
        self.add_raw(AttributeType::MESSAGE_INTEGRITY_SHA256, &mac)
    }

    /// Appends FINGERPRINT.
    pub fn add_fingerprint(&mut self) -> &mut Self {
        let body = self.buf.len() - HEADER_LEN + 8;
        self.set_length(body);
        let crc = integrity::fingerprint(&[&self.buf]);
        self.add_raw(AttributeType::FINGERPRINT, &crc.to_be_bytes())
    }

    /// Current encoded length.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no attribute was added yet.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == HEADER_LEN
    }

    /// The encoded message.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        if self.too_large {
            return Err(Error::TooLarge);
        }
        Ok(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8489_5_type_roundtrip() {
        for class in [
            Class::Request,
            Class::Indication,
            Class::Success,
            Class::Error,
        ] {
            for m in [0x001, 0x003, 0x009, 0xabc, 0xfff] {
                let t = encode_type(class, Method(m));
                assert_eq!(t & 0xc000, 0);
                assert_eq!(decode_type(t), (class, Method(m)));
            }
        }
        assert_eq!(encode_type(Class::Request, Method::BINDING), 0x0001);
        assert_eq!(encode_type(Class::Success, Method::BINDING), 0x0101);
        assert_eq!(encode_type(Class::Error, Method::ALLOCATE), 0x0113);
        assert_eq!(encode_type(Class::Indication, Method::SEND), 0x0016);
        assert_eq!(encode_type(Class::Indication, Method::DATA), 0x0017);
    }

    #[test]
    fn rfc8489_6_rejects_bad_headers() {
        assert_eq!(Message::parse(&[0; 10]).err(), Some(Error::Truncated));
        let mut m = MessageBuilder::new(Class::Request, Method::BINDING, TransactionId([1; 12]))
            .finish()
            .unwrap_or_default();
        m[0] = 0x80;
        assert_eq!(Message::parse(&m).err(), Some(Error::NotStun));
        m[0] = 0;
        m[4] = 0;
        assert_eq!(Message::parse(&m).err(), Some(Error::BadMagicCookie));
        m[4] = 0x21;
        m[3] = 2;
        assert_eq!(Message::parse(&m).err(), Some(Error::UnalignedLength));
        m[3] = 4;
        assert_eq!(Message::parse(&m).err(), Some(Error::Truncated));
        m.extend_from_slice(&[0, 6, 0, 9]);
        assert_eq!(Message::parse(&m).err(), Some(Error::MalformedAttributes));
    }

    #[test]
    fn rfc8489_14_5_attributes_after_integrity_are_ignored() {
        let tid = TransactionId([7; 12]);
        let mut b = MessageBuilder::new(Class::Request, Method::BINDING, tid);
        b.add(&Attribute::Username("alice"));
        b.add_message_integrity(b"key");
        b.add(&Attribute::Realm("ignored"));
        b.add_fingerprint();
        let bytes = b.finish().unwrap_or_default();
        let m = Message::parse(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.username(), Ok(Some("alice")));
        assert_eq!(m.realm(), Ok(None));
        assert_eq!(m.verify_integrity(b"key"), Ok(()));
        assert_eq!(m.verify_fingerprint(), Ok(()));
    }
}
