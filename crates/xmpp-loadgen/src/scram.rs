//! Client side of SASL SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) for tests and the
//! load generator: no channel binding (`n,,`), the server signature is checked. The salted
//! password is cached per user, password, salt and iteration count, as real clients cache it,
//! so the client's own PBKDF2 does not limit the login rate being measured. No SASLprep
//! (ASCII names and passwords only).
use crate::{text_of, Reader, Writer, B64};
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use hmac::{Hmac, Mac};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

/// Which SASL mechanism a login uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sasl {
    Plain,
    /// SCRAM-SHA-256 if offered, else SCRAM-SHA-1.
    Scram,
    ScramSha1,
    ScramSha256,
}

impl FromStr for Sasl {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "plain" => Sasl::Plain,
            "scram" => Sasl::Scram,
            "scram-sha-1" => Sasl::ScramSha1,
            "scram-sha-256" => Sasl::ScramSha256,
            other => {
                bail!("unknown mechanism {other:?} (plain, scram, scram-sha-1, scram-sha-256)")
            }
        })
    }
}

/// The hash of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    pub fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha1 => "SCRAM-SHA-1",
            ScramHash::Sha256 => "SCRAM-SHA-256",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let mut m = Hmac::<sha1::Sha1>::new_from_slice(key).expect("any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha256 => {
                let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            ScramHash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            ScramHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }

    fn salted(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha1 => {
                let mut out = vec![0u8; 20];
                pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, &mut out);
                out
            }
            ScramHash::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
                out
            }
        }
    }
}

impl Sasl {
    /// The SCRAM hash to use given the server's `features`, or `None` for PLAIN.
    pub fn pick(self, features: &str) -> Result<Option<ScramHash>> {
        let offered = |h: ScramHash| features.contains(&format!(">{}<", h.mechanism()));
        match self {
            Sasl::Plain => Ok(None),
            Sasl::Scram if offered(ScramHash::Sha256) => Ok(Some(ScramHash::Sha256)),
            Sasl::Scram if offered(ScramHash::Sha1) => Ok(Some(ScramHash::Sha1)),
            Sasl::ScramSha1 if offered(ScramHash::Sha1) => Ok(Some(ScramHash::Sha1)),
            Sasl::ScramSha256 if offered(ScramHash::Sha256) => Ok(Some(ScramHash::Sha256)),
            _ => bail!("{self:?} not offered: {features}"),
        }
    }
}

type CacheKey = (String, String, ScramHash, Vec<u8>, u32);
/// (ClientKey, ServerKey) per user, password, hash, salt and iterations.
type KeyCache = Mutex<HashMap<CacheKey, (Vec<u8>, Vec<u8>)>>;

fn cache() -> &'static KeyCache {
    static CACHE: OnceLock<KeyCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn keys(
    hash: ScramHash,
    user: &str,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> (Vec<u8>, Vec<u8>) {
    let key = (
        user.to_owned(),
        password.to_owned(),
        hash,
        salt.to_vec(),
        iterations,
    );
    if let Some(k) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
        return k;
    }
    let salted = hash.salted(password.as_bytes(), salt, iterations);
    let k = (
        hash.hmac(&salted, b"Client Key"),
        hash.hmac(&salted, b"Server Key"),
    );
    if let Ok(mut c) = cache().lock() {
        c.insert(key, k.clone());
    }
    k
}

fn client_nonce() -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// RFC 5802 §5.1: `=` and `,` in a user name are escaped.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// One SCRAM exchange on a stream whose features were just read; returns after `<success/>`
/// whose server signature matched.
pub async fn authenticate(
    w: &mut Writer,
    r: &mut Reader,
    hash: ScramHash,
    user: &str,
    password: &str,
) -> Result<()> {
    let client_nonce = client_nonce();
    let first_bare = format!("n={},r={client_nonce}", saslname(user));
    w.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{}'>{}</auth>",
        hash.mechanism(),
        B64.encode(format!("n,,{first_bare}"))
    ))
    .await?;
    let challenge = r.until("<challenge").await?;
    let server_first = text_of(&challenge, "challenge")
        .map(|t| B64.decode(t.trim()))
        .ok_or_else(|| anyhow!("empty challenge: {challenge}"))?
        .context("challenge base64")?;
    let server_first = String::from_utf8(server_first).context("challenge utf-8")?;
    let field = |name: &str| {
        server_first
            .split(',')
            .find_map(|p| p.strip_prefix(name))
            .ok_or_else(|| anyhow!("no {name} in {server_first}"))
    };
    let nonce = field("r=")?;
    if !nonce.starts_with(&client_nonce) {
        bail!("server nonce does not extend ours: {server_first}");
    }
    let salt = B64.decode(field("s=")?).context("salt base64")?;
    let iterations: u32 = field("i=")?.parse().context("iterations")?;
    let (client_key, server_key) = keys(hash, user, password, &salt, iterations);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = hash.hmac(&hash.hash(&client_key), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    w.send(&format!(
        "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
        B64.encode(format!("{without_proof},p={}", B64.encode(proof)))
    ))
    .await?;
    let mut answer = r.until("urn:ietf:params:xml:ns:xmpp-sasl").await?;
    let mut server_final = None;
    if answer.starts_with("<challenge") {
        // some servers send the server-final message as a challenge, then an empty success
        server_final = text_of(&answer, "challenge").map(str::to_owned);
        w.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
            .await?;
        answer = r.until("<success").await?;
    }
    if !answer.starts_with("<success") {
        bail!("SCRAM failed: {answer}");
    }
    let server_final = server_final
        .or_else(|| text_of(&answer, "success").map(str::to_owned))
        .ok_or_else(|| anyhow!("no server signature: {answer}"))?;
    let server_final = String::from_utf8(B64.decode(server_final.trim())?)?;
    let expected = B64.encode(hash.hmac(&server_key, auth_message.as_bytes()));
    if server_final.strip_prefix("v=") != Some(expected.as_str()) {
        bail!("wrong server signature: {server_final}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_3_client_proof() {
        // RFC 7677 §3 example: user, pencil, salt, 4096 iterations
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let (client_key, server_key) = keys(ScramHash::Sha256, "user", "pencil", &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
             r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
             c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let h = ScramHash::Sha256;
        let sig = h.hmac(&h.hash(&client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(k, s)| k ^ s).collect();
        assert_eq!(
            B64.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            B64.encode(h.hmac(&server_key, auth_message.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn mechanism_choice_follows_the_offer() {
        let both = "<mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-256</mechanism>";
        let sha1 = "<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism>";
        assert_eq!(Sasl::Scram.pick(both).ok(), Some(Some(ScramHash::Sha256)));
        assert_eq!(Sasl::Scram.pick(sha1).ok(), Some(Some(ScramHash::Sha1)));
        assert!(Sasl::ScramSha256.pick(sha1).is_err());
        assert_eq!(Sasl::Plain.pick(sha1).ok(), Some(None));
    }
}
