//! A validated account login `name@domain` (also the bare JID); parsing only, no lookup.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest accepted login, in bytes (the XMPP localpart and domainpart limits are 1023 each;
/// ours are stricter so logins stay usable in every UI and log line).
pub const MAX_LOGIN_LEN: usize = 255;
const MAX_LOCALPART_LEN: usize = 64;

/// Why a login was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("a login has the form name@domain")]
    MissingAt,
    #[error("a login is at most {MAX_LOGIN_LEN} characters")]
    TooLong,
    #[error("the name part is empty or longer than {MAX_LOCALPART_LEN} characters")]
    BadLocalpartLength,
    #[error("the name part may contain only letters a-z, digits and . _ - +")]
    BadLocalpartChar,
    #[error("the domain must be a DNS name such as example.com")]
    BadDomain,
}

/// A login such as `alice@example.com`, stored lower-case.
///
/// The name part is ASCII letters, digits and `._-+`; the domain is a DNS name. Both are
/// lower-cased so `Alice@Example.com` and `alice@example.com` are the same account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Login(String);

impl Login {
    /// Parses and normalises a login.
    pub fn parse(input: &str) -> Result<Self, LoginError> {
        if input.len() > MAX_LOGIN_LEN {
            return Err(LoginError::TooLong);
        }
        let lower = input.trim().to_ascii_lowercase();
        let (local, domain) = lower.split_once('@').ok_or(LoginError::MissingAt)?;
        if local.is_empty() || local.len() > MAX_LOCALPART_LEN {
            return Err(LoginError::BadLocalpartLength);
        }
        if !local
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-+".contains(&b))
        {
            return Err(LoginError::BadLocalpartChar);
        }
        if !is_dns_name(domain) {
            return Err(LoginError::BadDomain);
        }
        Ok(Login(lower))
    }

    /// The whole login.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`.
    pub fn localpart(&self) -> &str {
        self.0.split_once('@').map(|(l, _)| l).unwrap_or_default()
    }

    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

/// True for a DNS host name: labels of 1–63 letters, digits or `-`, not starting or ending in `-`.
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Login {
    type Err = LoginError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Login::parse(s)
    }
}

impl<'de> Deserialize<'de> for Login {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Login::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_lowercases() {
        let l = Login::parse("Alice.Smith@Example.COM").expect("valid");
        assert_eq!(l.as_str(), "alice.smith@example.com");
        assert_eq!(l.localpart(), "alice.smith");
        assert_eq!(l.domain(), "example.com");
    }

    #[test]
    fn rejects_bad_forms() {
        assert_eq!(Login::parse("alice"), Err(LoginError::MissingAt));
        assert_eq!(Login::parse("@x.com"), Err(LoginError::BadLocalpartLength));
        assert_eq!(Login::parse("a b@x.com"), Err(LoginError::BadLocalpartChar));
        assert_eq!(
            Login::parse("élodie@x.com"),
            Err(LoginError::BadLocalpartChar)
        );
        assert_eq!(
            Login::parse("a'; drop table users;--@x.com"),
            Err(LoginError::BadLocalpartChar)
        );
        assert_eq!(Login::parse("a@-x.com"), Err(LoginError::BadDomain));
        assert_eq!(Login::parse("a@x..com"), Err(LoginError::BadDomain));
        assert_eq!(
            Login::parse(&format!("{}@x.com", "a".repeat(300))),
            Err(LoginError::TooLong)
        );
        assert_eq!(
            Login::parse(&format!("{}@x.com", "a".repeat(65))),
            Err(LoginError::BadLocalpartLength)
        );
    }

    #[test]
    fn localhost_is_a_domain() {
        assert!(Login::parse("bob@localhost").is_ok());
    }
}
