//! MESSAGE-INTEGRITY(-SHA256), FINGERPRINT and credential keys (RFC 8489 §9, §14.5-§14.7); no lookup.

use crate::message::{Message, HEADER_LEN};
use crate::Error;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

/// The XOR applied to the CRC-32 in FINGERPRINT ("STUN").
pub const FINGERPRINT_XOR: u32 = 0x5354_554e;

/// A long-term credential key: MD5(username ":" realm ":" password).
pub type LongTermKey = [u8; 16];

/// The long-term credential key (RFC 8489 §9.2.2, MD5 algorithm), after SASLprep (RFC 4013)
/// of username and password, as RFC 5769 §2.4 does.
pub fn long_term_key(username: &str, realm: &str, password: &str) -> Result<LongTermKey, Error> {
    let username = stringprep::saslprep(username).map_err(|_| Error::Saslprep)?;
    let password = stringprep::saslprep(password).map_err(|_| Error::Saslprep)?;
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm.as_bytes());
    md5.update(b":");
    md5.update(password.as_bytes());
    Ok(md5.finalize().into())
}

/// The short-term credential key (RFC 8489 §9.1.1): the SASLprep'd password.
pub fn short_term_key(password: &str) -> Result<Vec<u8>, Error> {
    stringprep::saslprep(password)
        .map(|p| p.as_bytes().to_vec())
        .map_err(|_| Error::Saslprep)
}

/// HMAC-SHA1 over the concatenation of `parts`.
pub fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// CRC-32 of the concatenation of `parts`, XORed with 0x5354554e.
pub fn fingerprint(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize() ^ FINGERPRINT_XOR
}

/// The header with its length field rewritten to end just after an attribute of
/// `attr_len` bytes (header included) starting at `offset`.
fn patched_header(bytes: &[u8], offset: usize, attr_len: usize) -> Result<[u8; HEADER_LEN], Error> {
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(bytes.get(..HEADER_LEN).ok_or(Error::Truncated)?);
    let len = u16::try_from(offset + attr_len - HEADER_LEN).map_err(|_| Error::TooLarge)?;
    header[2..4].copy_from_slice(&len.to_be_bytes());
    Ok(header)
}

pub(crate) fn verify(message: &Message<'_>, key: &[u8]) -> Result<(), Error> {
    let bytes = message.as_bytes();
    if let Some(offset) = message.integrity_sha256_offset() {
        let value = bytes.get(offset + 4..).ok_or(Error::Truncated)?;
        let len = usize::from(crate::message::read_u16(bytes, offset + 2).ok_or(Error::Truncated)?);
        let value = value.get(..len).ok_or(Error::Truncated)?;
        let header = patched_header(bytes, offset, 4 + len)?;
        let body = bytes.get(HEADER_LEN..offset).ok_or(Error::Truncated)?;
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
            .map_err(|_| Error::IntegrityMismatch)?;
        mac.update(&header);
        mac.update(body);
        return mac
            .verify_truncated_left(value)
            .map_err(|_| Error::IntegrityMismatch);
    }
    let offset = message.integrity_offset().ok_or(Error::MissingIntegrity)?;
    let value = bytes.get(offset + 4..offset + 24).ok_or(Error::Truncated)?;
    let header = patched_header(bytes, offset, 24)?;
    let body = bytes.get(HEADER_LEN..offset).ok_or(Error::Truncated)?;
    let mut mac =
        <Hmac<sha1::Sha1> as Mac>::new_from_slice(key).map_err(|_| Error::IntegrityMismatch)?;
    mac.update(&header);
    mac.update(body);
    mac.verify_slice(value)
        .map_err(|_| Error::IntegrityMismatch)
}

pub(crate) fn verify_fingerprint(message: &Message<'_>) -> Result<(), Error> {
    let Some(offset) = message.fingerprint_offset() else {
        return Ok(());
    };
    let bytes = message.as_bytes();
    let value = crate::message::read_u32(bytes, offset + 4).ok_or(Error::Truncated)?;
    let header = patched_header(bytes, offset, 8)?;
    let body = bytes.get(HEADER_LEN..offset).ok_or(Error::Truncated)?;
    if fingerprint(&[&header, body]) == value {
        Ok(())
    } else {
        Err(Error::FingerprintMismatch)
    }
}
