//! Access tokens (HMAC-SHA256-signed, short-lived, bound to a session) and refresh tokens
//! (random, stored only as a hash). Signing and parsing only; revocation lives in the store.
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use iris_model::{Secret, UserId};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// What an access token asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Session id.
    pub sid: String,
    /// User id.
    pub uid: i64,
    /// Expiry, Unix milliseconds.
    pub exp: i64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
}

/// Signs and checks access tokens with one secret key.
#[derive(Clone)]
pub struct TokenKey {
    key: Secret,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

const PREFIX: &str = "iat1.";

impl TokenKey {
    pub fn new(key: Secret) -> Self {
        TokenKey { key }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.key.expose().as_bytes())
            .expect("HMAC accepts keys of any length")
    }

    /// `iat1.<payload>.<signature>`, both base64url.
    pub fn sign(&self, user: UserId, session: &str, expires_at: i64) -> String {
        let claims = Claims {
            sid: session.to_owned(),
            uid: user.0,
            exp: expires_at,
        };
        let payload = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{PREFIX}{payload}.{sig}")
    }

    /// Checks form, signature (constant time) and expiry at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        let (payload, sig) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| TokenError::BadSignature)?;
        let raw = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&raw).map_err(|_| TokenError::Malformed)?;
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// 32 random bytes, base64url: session ids, refresh tokens, generated secrets.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

/// The stored form of a refresh token: hex SHA-256 (the token itself has 256 bits of entropy).
pub fn refresh_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_refuse() {
        let k = TokenKey::new(Secret::new("k1"));
        let t = k.sign(UserId(7), "s", 1000);
        assert_eq!(k.verify(&t, 999).expect("valid").uid, 7);
        assert_eq!(k.verify(&t, 1000), Err(TokenError::Expired));
        let other = TokenKey::new(Secret::new("k2"));
        assert_eq!(other.verify(&t, 0), Err(TokenError::BadSignature));
        // Tampered payload: signature no longer matches.
        let forged = t.replacen("iat1.e", "iat1.f", 1);
        assert!(k.verify(&forged, 0).is_err());
        assert_eq!(k.verify("garbage", 0), Err(TokenError::Malformed));
        assert!(k.verify("iat1.a.b.c", 0).is_err());
    }
}
