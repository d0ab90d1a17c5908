//! Decoding and verification errors, named by cause; no mapping to wire error codes here.

use std::fmt;

/// Why bytes could not be understood as STUN / ChannelData, or why a check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer bytes than the header or a declared length needs.
    Truncated,
    /// The two most significant bits of a STUN message are not zero.
    NotStun,
    /// The magic cookie is not 0x2112A442 (RFC 3489 messages are not supported).
    BadMagicCookie,
    /// The message length is not a multiple of four.
    UnalignedLength,
    /// The bytes after the header do not form a whole number of attributes.
    MalformedAttributes,
    /// An attribute value has the wrong size or content for its type.
    MalformedAttribute(u16),
    /// A text attribute is not UTF-8 or is longer than RFC 8489 allows.
    InvalidText(u16),
    /// An address attribute carries an unknown address family.
    UnknownAddressFamily(u8),
    /// MESSAGE-INTEGRITY / MESSAGE-INTEGRITY-SHA256 is absent.
    MissingIntegrity,
    /// MESSAGE-INTEGRITY / MESSAGE-INTEGRITY-SHA256 does not match the key.
    IntegrityMismatch,
    /// FINGERPRINT does not match the CRC-32 of the message.
    FingerprintMismatch,
    /// A ChannelData channel number is outside 0x4000..=0x7FFF.
    InvalidChannelNumber(u16),
    /// The message would exceed the 16-bit length field.
    TooLarge,
    /// SASLprep (RFC 4013) rejected a username or password.
    Saslprep,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated"),
            Error::NotStun => f.write_str("not a STUN message"),
            Error::BadMagicCookie => f.write_str("bad magic cookie"),
            Error::UnalignedLength => f.write_str("message length not a multiple of 4"),
            Error::MalformedAttributes => f.write_str("malformed attribute list"),
            Error::MalformedAttribute(t) => write!(f, "malformed attribute 0x{t:04x}"),
            Error::InvalidText(t) => write!(f, "invalid text in attribute 0x{t:04x}"),
            Error::UnknownAddressFamily(a) => write!(f, "unknown address family 0x{a:02x}"),
            Error::MissingIntegrity => f.write_str("missing message integrity"),
            Error::IntegrityMismatch => f.write_str("message integrity mismatch"),
            Error::FingerprintMismatch => f.write_str("fingerprint mismatch"),
            Error::InvalidChannelNumber(c) => write!(f, "invalid channel number 0x{c:04x}"),
            Error::TooLarge => f.write_str("message too large"),
            Error::Saslprep => f.write_str("SASLprep rejected the string"),
        }
    }
}

impl std::error::Error for Error {}
