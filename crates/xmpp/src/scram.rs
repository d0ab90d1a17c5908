//! SCRAM (RFC 5802, RFC 7677) server side for SHA-1 and SHA-256, with channel binding
//! (`tls-exporter` RFC 9266, `tls-server-end-point` RFC 5929): message parsing, proof
//! verification and key derivation. It does not choose mechanisms or talk XML (see
//! [`crate::sasl`]) and never needs the plaintext password on the server.

use std::fmt;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScramHash {
    /// SCRAM-SHA-1 (RFC 5802).
    Sha1,
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
}

impl ScramHash {
    /// Output length of the hash in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => match Hmac::<Sha1>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            Self::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => Sha1::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_len()];
        match self {
            Self::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
            Self::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
        }
        out
    }
}

/// What an account stores instead of a password (RFC 5802 §3): enough to verify a client and
/// to prove the server's knowledge, not enough to log in elsewhere with. `Debug` hides keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramKeys {
    /// The hash these keys belong to.
    pub hash: ScramHash,
    /// Salt used for PBKDF2.
    pub salt: Vec<u8>,
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramKeys")
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why a SCRAM exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramError {
    /// The message did not follow the RFC 5802 §7 grammar.
    Malformed,
    /// A mandatory extension (`m=`) was requested.
    UnsupportedExtension,
    /// The username or password failed SASLprep (RFC 4013).
    Prep,
    /// Iteration count 0.
    BadIterations,
    /// The channel-binding data (`c=`) did not match this connection.
    ChannelBindingMismatch,
    /// The nonce in the final message was not the one of this exchange.
    NonceMismatch,
    /// The client proof was wrong (wrong password, or an unknown user).
    InvalidProof,
}

/// Derive the stored keys for a password (RFC 5802 §3), after SASLprep of the password.
pub fn derive_keys(
    password: &str,
    salt: &[u8],
    iterations: u32,
    hash: ScramHash,
) -> Result<ScramKeys, ScramError> {
    if iterations == 0 {
        return Err(ScramError::BadIterations);
    }
    let prepped = stringprep::saslprep(password).map_err(|_| ScramError::Prep)?;
    let salted = hash.salted_password(prepped.as_bytes(), salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.hash(&client_key);
    let server_key = hash.hmac(&salted, b"Server Key");
    Ok(ScramKeys {
        hash,
        salt: salt.to_vec(),
        iterations,
        stored_key,
        server_key,
    })
}

/// Channel-binding types the server can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBindingType {
    /// RFC 9266 (TLS 1.3 and TLS 1.2 with extended master secret).
    TlsExporter,
    /// RFC 5929 §4: hash of the server certificate.
    TlsServerEndPoint,
}

impl ChannelBindingType {
    /// The name used in the GS2 header and in XEP-0440.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TlsExporter => "tls-exporter",
            Self::TlsServerEndPoint => "tls-server-end-point",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        match s {
            "tls-exporter" => Some(Self::TlsExporter),
            "tls-server-end-point" => Some(Self::TlsServerEndPoint),
            _ => None,
        }
    }
}

/// The GS2 channel-binding flag of a client-first message (RFC 5802 §7 `gs2-cbind-flag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CbFlag {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports it but thinks the server does not.
    ClientSupports,
    /// `p=name` with a type this server knows.
    Used(ChannelBindingType),
    /// `p=name` with a type this server does not know.
    UsedUnknown,
}

/// A parsed client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The channel-binding flag.
    pub cb_flag: CbFlag,
    /// `a=` authorization identity, decoded and SASLprepped.
    pub authzid: Option<String>,
    /// `n=` user name, decoded and SASLprepped.
    pub username: String,
    /// `r=` client nonce.
    pub client_nonce: String,
    gs2_header: String,
    bare: String,
}

/// Parse a client-first message (RFC 5802 §5.1, §7).
pub fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, ScramError> {
    let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed)?;
    let (flag, rest) = msg.split_once(',').ok_or(ScramError::Malformed)?;
    let (authz, bare) = rest.split_once(',').ok_or(ScramError::Malformed)?;
    let cb_flag = match flag {
        "n" => CbFlag::NotSupported,
        "y" => CbFlag::ClientSupports,
        _ => match flag.strip_prefix("p=") {
            Some(name) if !name.is_empty() => match ChannelBindingType::from_name(name) {
                Some(t) => CbFlag::Used(t),
                None => CbFlag::UsedUnknown,
            },
            _ => return Err(ScramError::Malformed),
        },
    };
    let authzid = match authz {
        "" => None,
        a => match a.strip_prefix("a=") {
            Some(name) => Some(prep(&decode_saslname(name)?)?),
            None => return Err(ScramError::Malformed),
        },
    };
    let mut parts = bare.split(',');
    let first = parts.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(ScramError::UnsupportedExtension);
    }
    let user = first.strip_prefix("n=").ok_or(ScramError::Malformed)?;
    let username = prep(&decode_saslname(user)?)?;
    if username.is_empty() {
        return Err(ScramError::Malformed);
    }
    let nonce = parts
        .next()
        .and_then(|p| p.strip_prefix("r="))
        .ok_or(ScramError::Malformed)?;
    if !valid_nonce(nonce) {
        return Err(ScramError::Malformed);
    }
    Ok(ClientFirst {
        cb_flag,
        authzid,
        username,
        client_nonce: nonce.to_owned(),
        gs2_header: format!("{flag},{authz},"),
        bare: bare.to_owned(),
    })
}

fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

fn prep(s: &str) -> Result<String, ScramError> {
    stringprep::saslprep(s)
        .map(|c| c.into_owned())
        .map_err(|_| ScramError::Prep)
}

/// RFC 5802 §5.1: `=2C` is `,` and `=3D` is `=`; any other `=` is an error.
pub(crate) fn decode_saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('=') {
        out.push_str(rest.get(..pos).ok_or(ScramError::Malformed)?);
        let after = rest.get(pos..).ok_or(ScramError::Malformed)?;
        if let Some(r) = after.strip_prefix("=2C") {
            out.push(',');
            rest = r;
        } else if let Some(r) = after.strip_prefix("=3D") {
            out.push('=');
            rest = r;
        } else {
            return Err(ScramError::Malformed);
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The server's side of one exchange after the client-first message.
pub struct ScramServer {
    keys: ScramKeys,
    nonce: String,
    gs2_header: String,
    cb_data: Vec<u8>,
    auth_message_prefix: String,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer").finish_non_exhaustive()
    }
}

impl ScramServer {
    /// Start the exchange: returns the server and its server-first message (RFC 5802 §5.1).
    /// `cb_data` is the channel-binding data of this connection for the type the client
    /// chose (`None` when the client used `n` or `y`).
    pub fn new(
        first: &ClientFirst,
        keys: ScramKeys,
        server_nonce: &str,
        cb_data: Option<Vec<u8>>,
    ) -> (Self, String) {
        let nonce = format!("{}{}", first.client_nonce, server_nonce);
        let server_first = format!(
            "r={},s={},i={}",
            nonce,
            B64.encode(&keys.salt),
            keys.iterations
        );
        let auth_message_prefix = format!("{},{}", first.bare, server_first);
        let server = Self {
            keys,
            nonce,
            gs2_header: first.gs2_header.clone(),
            cb_data: cb_data.unwrap_or_default(),
            auth_message_prefix,
        };
        (server, server_first)
    }

    /// Verify the client-final message; on success returns the server-final message
    /// (`v=…`) to send in `<success/>`.
    pub fn finish(&self, msg: &[u8]) -> Result<String, ScramError> {
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed)?;
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or(ScramError::Malformed)?;
        let mut parts = without_proof.split(',');
        let c = parts
            .next()
            .and_then(|p| p.strip_prefix("c="))
            .ok_or(ScramError::Malformed)?;
        let r = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .ok_or(ScramError::Malformed)?;
        let c = B64.decode(c).map_err(|_| ScramError::Malformed)?;
        let proof = B64.decode(proof).map_err(|_| ScramError::Malformed)?;
        let mut expected_c = self.gs2_header.as_bytes().to_vec();
        expected_c.extend_from_slice(&self.cb_data);
        if !bool::from(c.ct_eq(&expected_c)) {
            return Err(ScramError::ChannelBindingMismatch);
        }
        if r != self.nonce {
            return Err(ScramError::NonceMismatch);
        }
        let hash = self.keys.hash;
        let auth_message = format!("{},{}", self.auth_message_prefix, without_proof);
        let client_signature = hash.hmac(&self.keys.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError::InvalidProof);
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        let stored = hash.hash(&client_key);
        if !bool::from(stored.ct_eq(&self.keys.stored_key)) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = hash.hmac(&self.keys.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(hash: ScramHash, first: &str, server_nonce: &str, salt_b64: &str, fin: &str) -> String {
        let salt = B64.decode(salt_b64).unwrap_or_default();
        let keys = derive_keys("pencil", &salt, 4096, hash).unwrap_or_else(|_| panic!("derive"));
        let cf = parse_client_first(first.as_bytes()).unwrap_or_else(|_| panic!("first"));
        let (server, _sf) = ScramServer::new(&cf, keys, server_nonce, None);
        server
            .finish(fin.as_bytes())
            .unwrap_or_else(|e| panic!("finish: {e:?}"))
    }

    #[test]
    fn rfc5802_5_scram_sha1_example() {
        let first = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
        let salt = "QSXCR+Q6sek8bf92";
        let cf = parse_client_first(first.as_bytes()).unwrap_or_else(|_| panic!("first"));
        let keys = derive_keys(
            "pencil",
            &B64.decode(salt).unwrap_or_default(),
            4096,
            ScramHash::Sha1,
        )
        .unwrap_or_else(|_| panic!("derive"));
        let (_, server_first) = ScramServer::new(&cf, keys, "3rfcNHYJY1ZVvWVs7j", None);
        assert_eq!(
            server_first,
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
        );
        let v = run(
            ScramHash::Sha1,
            first,
            "3rfcNHYJY1ZVvWVs7j",
            salt,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
        );
        assert_eq!(v, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    }

    #[test]
    fn rfc7677_3_scram_sha256_example() {
        let v = run(
            ScramHash::Sha256,
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            "W22ZaJ0SNY7soEsUEjb6gQ==",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        );
        assert_eq!(v, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn rfc5802_5_wrong_proof_is_rejected() {
        let first = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
        let cf = parse_client_first(first.as_bytes()).unwrap_or_else(|_| panic!("first"));
        let keys = derive_keys("pencil", b"salt", 4096, ScramHash::Sha1)
            .unwrap_or_else(|_| panic!("derive"));
        let (server, _) = ScramServer::new(&cf, keys, "abc", None);
        let r =
            server.finish(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawLabc,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
        assert_eq!(r, Err(ScramError::InvalidProof));
        let r = server.finish(b"c=biws,r=other,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
        assert_eq!(r, Err(ScramError::NonceMismatch));
        let r =
            server.finish(b"c=eSws,r=fyko+d2lbbFgONRv9qkxdawLabc,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
        assert_eq!(r, Err(ScramError::ChannelBindingMismatch));
    }

    #[test]
    fn rfc5802_5_1_saslname_decoding_and_mandatory_extension() {
        let cf = parse_client_first(b"n,a=x=3Dy,n=a=2Cb,r=n1").unwrap_or_else(|_| panic!("first"));
        assert_eq!(cf.username, "a,b");
        assert_eq!(cf.authzid.as_deref(), Some("x=y"));
        assert_eq!(
            parse_client_first(b"n,,n=a=b,r=n1"),
            Err(ScramError::Malformed)
        );
        assert_eq!(
            parse_client_first(b"n,,m=ext,n=a,r=n1"),
            Err(ScramError::UnsupportedExtension)
        );
        assert_eq!(
            parse_client_first(b"x,,n=a,r=n1"),
            Err(ScramError::Malformed)
        );
        assert_eq!(parse_client_first(b"n,,n=a,r="), Err(ScramError::Malformed));
        assert_eq!(
            parse_client_first(b"p=tls-exporter,,n=a,r=x")
                .map(|c| c.cb_flag)
                .ok(),
            Some(CbFlag::Used(ChannelBindingType::TlsExporter))
        );
    }

    #[test]
    fn rfc5802_3_keys_debug_hides_secrets() {
        let keys = derive_keys("pencil", b"salt", 1, ScramHash::Sha256)
            .unwrap_or_else(|_| panic!("derive"));
        let dbg = format!("{keys:?}");
        assert!(!dbg.contains("stored_key") && !dbg.contains("server_key"));
        assert_eq!(
            derive_keys("p", b"s", 0, ScramHash::Sha1),
            Err(ScramError::BadIterations)
        );
    }
}
