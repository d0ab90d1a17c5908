//! Long-term credentials (RFC 8489 §9.2): stateless nonces and REST-style time-limited users; no clock reads.

use base64::Engine;
use iris_stun::integrity::hmac_sha1;
use iris_stun::{long_term_key, LongTermKey, PasswordAlgorithm, SecurityFeatures};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Looks up the long-term key of `username` in `realm` (Pion's `AuthHandler`).
///
/// `None` means "unknown or no longer valid user". Implemented by closures
/// `Fn(&str, &str) -> Option<LongTermKey>`.
pub trait CredentialLookup: Send + Sync {
    /// The key MD5(username ":" realm ":" password), or `None`.
    fn key(&self, username: &str, realm: &str) -> Option<LongTermKey>;

    /// The key of `algorithm` (RFC 8489 §9.2.2); by default MD5 only.
    fn key_for(
        &self,
        username: &str,
        realm: &str,
        algorithm: PasswordAlgorithm,
    ) -> Option<Vec<u8>> {
        match algorithm {
            PasswordAlgorithm::Md5 => self.key(username, realm).map(Vec::from),
            PasswordAlgorithm::Sha256 => None,
        }
    }

    /// The user whose USERHASH (RFC 8489 §14.4) in `realm` is `userhash`; by default none.
    fn username_for_hash(&self, userhash: &[u8], realm: &str) -> Option<String> {
        let _ = (userhash, realm);
        None
    }
}

impl<F: Fn(&str, &str) -> Option<LongTermKey> + Send + Sync> CredentialLookup for F {
    fn key(&self, username: &str, realm: &str) -> Option<LongTermKey> {
        self(username, realm)
    }
}

/// Time-limited credentials computed from a shared secret, as coturn's `use-auth-secret`
/// ("TURN REST API"): username `"<expiry-unix>:<user>"`, password
/// `base64(HMAC-SHA1(secret, username))`.
#[derive(Clone)]
pub struct RestCredentials {
    secret: Vec<u8>,
}

impl std::fmt::Debug for RestCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RestCredentials(***)")
    }
}

impl RestCredentials {
    /// Credentials derived from `secret`.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        RestCredentials {
            secret: secret.into(),
        }
    }

    /// The password for `username`.
    pub fn password(&self, username: &str) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(hmac_sha1(&self.secret, &[username.as_bytes()]))
    }

    /// A (username, password) pair for `user`, valid until `expiry_unix`.
    pub fn issue(&self, user: &str, expiry_unix: u64) -> (String, String) {
        let username = format!("{expiry_unix}:{user}");
        let password = self.password(&username);
        (username, password)
    }

    /// The key for `username` if it is well-formed and not expired at `unix_now`.
    pub fn key(&self, username: &str, realm: &str, unix_now: u64) -> Option<LongTermKey> {
        self.valid(username, unix_now)?;
        long_term_key(username, realm, &self.password(username)).ok()
    }

    /// The key of `algorithm` for `username` if well-formed and not expired at `unix_now`.
    pub fn key_for(
        &self,
        username: &str,
        realm: &str,
        unix_now: u64,
        algorithm: PasswordAlgorithm,
    ) -> Option<Vec<u8>> {
        self.valid(username, unix_now)?;
        algorithm
            .key(username, realm, &self.password(username))
            .ok()
    }

    fn valid(&self, username: &str, unix_now: u64) -> Option<()> {
        let expiry: u64 = username.split(':').next()?.parse().ok()?;
        (expiry >= unix_now).then_some(())
    }
}

/// The part of a username that quotas count: `"<expiry>:<user>"` counts as `user`.
pub fn quota_user(username: &str) -> &str {
    match username.split_once(':') {
        Some((expiry, user))
            if !expiry.is_empty() && expiry.bytes().all(|b| b.is_ascii_digit()) =>
        {
            user
        }
        _ => username,
    }
}

/// Issues and checks stateless nonces: `<nonce cookie and features, when any>` +
/// `<age-seconds hex><HMAC(secret, issue time, client IP)>`.
#[derive(Clone)]
pub(crate) struct NonceIssuer {
    secret: [u8; 32],
    epoch: Instant,
    lifetime: Duration,
    /// The RFC 8489 §9.2 nonce cookie and feature bits, or empty.
    prefix: String,
}

/// Why a nonce was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceError {
    /// Well-formed and ours, but older than the nonce lifetime.
    Stale,
    /// Not issued by us (or for another client address).
    Invalid,
}

impl NonceIssuer {
    pub(crate) fn new(
        secret: [u8; 32],
        epoch: Instant,
        lifetime: Duration,
        features: SecurityFeatures,
    ) -> Self {
        let prefix = if features == SecurityFeatures::default() {
            String::new()
        } else {
            features.nonce_prefix()
        };
        NonceIssuer {
            secret,
            epoch,
            lifetime,
            prefix,
        }
    }

    fn mac(&self, issued: u32, client: IpAddr) -> String {
        let ip = match client {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        let mac = hmac_sha1(&self.secret, &[&issued.to_be_bytes(), &ip]);
        let mut s = String::with_capacity(16);
        for b in mac.iter().take(8) {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    pub(crate) fn issue(&self, now: Instant, client: IpAddr) -> String {
        let issued =
            u32::try_from(now.saturating_duration_since(self.epoch).as_secs()).unwrap_or(u32::MAX);
        format!("{}{issued:08x}{}", self.prefix, self.mac(issued, client))
    }

    pub(crate) fn check(
        &self,
        nonce: &str,
        now: Instant,
        client: IpAddr,
    ) -> Result<(), NonceError> {
        let nonce = nonce
            .strip_prefix(self.prefix.as_str())
            .ok_or(NonceError::Invalid)?;
        if nonce.len() != 24 || !nonce.is_ascii() {
            return Err(NonceError::Invalid);
        }
        let (issued_hex, mac) = nonce.split_at(8);
        let issued = u32::from_str_radix(issued_hex, 16).map_err(|_| NonceError::Invalid)?;
        if self.mac(issued, client) != mac {
            return Err(NonceError::Invalid);
        }
        let issued_at = self.epoch + Duration::from_secs(u64::from(issued));
        if now.saturating_duration_since(issued_at) >= self.lifetime {
            return Err(NonceError::Stale);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_credentials_match_coturn_scheme() {
        let rest = RestCredentials::new("north");
        let (user, pass) = rest.issue("alice", 2_000_000_000);
        assert_eq!(user, "2000000000:alice");
        assert_eq!(pass.len(), 28);
        assert!(rest.key(&user, "iris", 1_999_999_999).is_some());
        assert!(rest.key(&user, "iris", 2_000_000_001).is_none());
        assert!(rest.key("alice", "iris", 0).is_none());
        assert_eq!(
            rest.key(&user, "iris", 0),
            long_term_key(&user, "iris", &pass).ok()
        );
        assert_eq!(quota_user(&user), "alice");
        assert_eq!(quota_user("bob"), "bob");
        assert_eq!(format!("{rest:?}"), "RestCredentials(***)");
    }

    #[test]
    fn rfc8489_9_2_nonce_expires_and_is_bound_to_client() {
        let t0 = Instant::now();
        let features = SecurityFeatures {
            password_algorithms: true,
            username_anonymity: false,
        };
        let n = NonceIssuer::new([7; 32], t0, Duration::from_secs(600), features);
        let ip: IpAddr = "192.0.2.1".parse().unwrap_or_else(|_| unreachable!());
        let other: IpAddr = "192.0.2.2".parse().unwrap_or_else(|_| unreachable!());
        let nonce = n.issue(t0 + Duration::from_secs(5), ip);
        assert!(nonce.starts_with("obMatJos2AAAB"), "{nonce}");
        assert_eq!(SecurityFeatures::of_nonce(&nonce), Some(features));
        assert_eq!(n.check(&nonce, t0 + Duration::from_secs(100), ip), Ok(()));
        assert_eq!(
            n.check(&nonce, t0 + Duration::from_secs(605), ip),
            Err(NonceError::Stale)
        );
        assert_eq!(
            n.check(&nonce, t0 + Duration::from_secs(100), other),
            Err(NonceError::Invalid)
        );
        assert_eq!(n.check("garbage", t0, ip), Err(NonceError::Invalid));
        // Without the cookie (an RFC 5389-style nonce of the same issuer): not ours.
        assert_eq!(
            n.check(&nonce[13..], t0 + Duration::from_secs(100), ip),
            Err(NonceError::Invalid)
        );
    }
}
