//! RFC 8489 §9.2 password algorithms: PASSWORD-ALGORITHMS / PASSWORD-ALGORITHM values, SHA-256 keys, USERHASH and the nonce cookie; no credential lookup.
//!
//! A server that supports these features starts every nonce with the nonce cookie
//! `obMatJos2` and four base64 characters of its 24 security-feature bits (§9.2, numbered
//! from the least significant bit as corrected by erratum 6290: bit 0 "password algorithms",
//! bit 1 "username anonymity"), lists its algorithms in PASSWORD-ALGORITHMS of the 401/438,
//! and checks that a client which picks one with PASSWORD-ALGORITHM echoes that list
//! unchanged (no bid-down).

use crate::Error;
use sha2::{Digest, Sha256};

/// The nonce cookie (RFC 8489 §9.2).
pub const NONCE_COOKIE: &str = "obMatJos2";

/// A password algorithm (RFC 8489 §18.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordAlgorithm {
    /// 0x0001: key = MD5(username ":" realm ":" password), 16 bytes.
    Md5,
    /// 0x0002: key = SHA-256(username ":" realm ":" password), 32 bytes.
    Sha256,
}

impl PasswordAlgorithm {
    /// The registered code.
    pub const fn code(self) -> u16 {
        match self {
            PasswordAlgorithm::Md5 => 0x0001,
            PasswordAlgorithm::Sha256 => 0x0002,
        }
    }

    /// The algorithm of `code`, if known.
    pub const fn from_code(code: u16) -> Option<Self> {
        match code {
            0x0001 => Some(PasswordAlgorithm::Md5),
            0x0002 => Some(PasswordAlgorithm::Sha256),
            _ => None,
        }
    }

    /// The long-term key of this algorithm (username and password SASLprep'd as for MD5,
    /// see [`crate::long_term_key`]).
    pub fn key(self, username: &str, realm: &str, password: &str) -> Result<Vec<u8>, Error> {
        match self {
            PasswordAlgorithm::Md5 => {
                crate::long_term_key(username, realm, password).map(Vec::from)
            }
            PasswordAlgorithm::Sha256 => {
                long_term_key_sha256(username, realm, password).map(Vec::from)
            }
        }
    }

    /// The PASSWORD-ALGORITHM value (§14.12): algorithm, zero-length parameters.
    pub fn encode(self) -> [u8; 4] {
        let c = self.code().to_be_bytes();
        [c[0], c[1], 0, 0]
    }
}

/// The SHA-256 long-term key (RFC 8489 §9.2.2).
pub fn long_term_key_sha256(
    username: &str,
    realm: &str,
    password: &str,
) -> Result<[u8; 32], Error> {
    let username = stringprep::saslprep(username).map_err(|_| Error::Saslprep)?;
    let password = stringprep::saslprep(password).map_err(|_| Error::Saslprep)?;
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    Ok(h.finalize().into())
}

/// USERHASH (RFC 8489 §14.4): SHA-256(username ":" realm).
pub fn userhash(username: &str, realm: &str) -> Result<[u8; 32], Error> {
    let username = stringprep::saslprep(username).map_err(|_| Error::Saslprep)?;
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    Ok(h.finalize().into())
}

/// The PASSWORD-ALGORITHMS value (§14.11) listing `algorithms` in order of preference.
pub fn encode_algorithms(algorithms: &[PasswordAlgorithm]) -> Vec<u8> {
    algorithms.iter().flat_map(|a| a.encode()).collect()
}

/// Decodes a PASSWORD-ALGORITHM value: the algorithm code (unknown ones kept as codes)
/// and its parameters, which must fit the value.
pub fn decode_algorithm(value: &[u8]) -> Result<u16, Error> {
    let bad = Error::MalformedAttribute(0x001D);
    let code = u16::from_be_bytes([*value.first().ok_or(bad)?, *value.get(1).ok_or(bad)?]);
    let len = u16::from_be_bytes([*value.get(2).ok_or(bad)?, *value.get(3).ok_or(bad)?]);
    if value.len() != 4 + usize::from(len).next_multiple_of(4)
        && value.len() != 4 + usize::from(len)
    {
        return Err(bad);
    }
    Ok(code)
}

/// The security features a server announces in its nonces (RFC 8489 §9.2, §18.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecurityFeatures {
    /// Bit 0: PASSWORD-ALGORITHMS is offered and checked.
    pub password_algorithms: bool,
    /// Bit 1: USERHASH is accepted instead of USERNAME.
    pub username_anonymity: bool,
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl SecurityFeatures {
    fn bits(self) -> u32 {
        u32::from(self.password_algorithms) | u32::from(self.username_anonymity) << 1
    }

    /// The nonce cookie followed by the 24 feature bits in base64 (13 characters).
    pub fn nonce_prefix(self) -> String {
        let bits = self.bits();
        let mut s = String::with_capacity(13);
        s.push_str(NONCE_COOKIE);
        for shift in [18, 12, 6, 0] {
            s.push(char::from(BASE64[((bits >> shift) & 0x3f) as usize]));
        }
        s
    }

    /// The features announced by `nonce`, if it starts with the nonce cookie.
    pub fn of_nonce(nonce: &str) -> Option<Self> {
        let code = nonce.strip_prefix(NONCE_COOKIE)?.get(..4)?;
        let mut bits = 0u32;
        for c in code.bytes() {
            let v = BASE64.iter().position(|&b| b == c)?;
            bits = bits << 6 | v as u32;
        }
        Some(SecurityFeatures {
            password_algorithms: bits & 1 != 0,
            username_anonymity: bits & 2 != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8489_b1_userhash_of_the_test_vector() {
        // RFC 8489 Appendix B.1: username "マトリックス", realm "example.org".
        let hash = userhash(
            "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}",
            "example.org",
        )
        .unwrap_or_default();
        assert_eq!(
            hash[..8],
            [0x4a, 0x3c, 0xf3, 0x8f, 0xef, 0x69, 0x92, 0xbd],
            "{hash:02x?}"
        );
        assert_eq!(hash[24..], [0x05, 0xc4, 0x6e, 0x41, 0x40, 0x7f, 0x17, 0x04]);
    }

    #[test]
    fn rfc8489_9_2_nonce_cookie_and_feature_bits() {
        // Erratum 6290: bit 0 is the least significant; B.1's nonce announces bit 1 only.
        let b1 = SecurityFeatures::of_nonce("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA");
        assert_eq!(
            b1,
            Some(SecurityFeatures {
                password_algorithms: false,
                username_anonymity: true
            })
        );
        let both = SecurityFeatures {
            password_algorithms: true,
            username_anonymity: true,
        };
        assert_eq!(both.nonce_prefix(), "obMatJos2AAAD");
        assert_eq!(SecurityFeatures::of_nonce(&both.nonce_prefix()), Some(both));
        assert_eq!(SecurityFeatures::of_nonce("0123456789abcdef"), None);
        assert_eq!(SecurityFeatures::of_nonce("obMatJos2A"), None);
        assert_eq!(SecurityFeatures::of_nonce("obMatJos2AA\u{e9}"), None);
    }

    #[test]
    fn rfc8489_14_11_algorithm_lists_and_keys() {
        let list = encode_algorithms(&[PasswordAlgorithm::Sha256, PasswordAlgorithm::Md5]);
        assert_eq!(list, [0, 2, 0, 0, 0, 1, 0, 0]);
        assert_eq!(decode_algorithm(&[0, 2, 0, 0]), Ok(2));
        assert!(decode_algorithm(&[0, 2, 0]).is_err());
        assert!(decode_algorithm(&[0, 2, 0, 8, 1]).is_err());
        assert_eq!(
            PasswordAlgorithm::from_code(2),
            Some(PasswordAlgorithm::Sha256)
        );
        assert_eq!(PasswordAlgorithm::from_code(3), None);
        let md5 = PasswordAlgorithm::Md5
            .key("u", "r", "p")
            .unwrap_or_default();
        let sha = PasswordAlgorithm::Sha256
            .key("u", "r", "p")
            .unwrap_or_default();
        assert_eq!(md5.len(), 16);
        assert_eq!(sha.len(), 32);
        let direct: [u8; 32] = Sha256::digest(b"u:r:p").into();
        assert_eq!(sha, direct);
    }
}
