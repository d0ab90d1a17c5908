//! The control channel between XMPP nodes and conference units over NATS (version 0, see the
//! crate README): subjects, connection with the configured credentials, the wire messages
//! ([`wire`]), the unit's side ([`agent`]) and the bridge's side ([`RemoteUnits`]). Does not
//! carry media (clients send it to the unit directly) nor XMPP.

pub mod agent;
pub mod remote;
pub mod wire;

use std::time::Duration;

use crate::config::ControlConfig;

pub use agent::Agent;
pub use remote::{RemoteUnits, UnitStatus};

/// Why the control channel could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// `conference.control.nats_url` is not set.
    #[error("conference.control.nats_url is not set")]
    NotConfigured,
    /// A name or prefix is not a valid NATS subject token.
    #[error("invalid {0}: use letters, digits, '-' and '_' (and '.' between prefix tokens)")]
    BadName(&'static str),
    /// The credentials file cannot be read.
    #[error("cannot read the NATS credentials file: {0}")]
    Credentials(std::io::Error),
    /// Connecting or authenticating to NATS failed (the message names no secret).
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    /// Subscribing failed.
    #[error("NATS subscribe failed: {0}")]
    Subscribe(String),
}

/// The subjects of one deployment (`prefix` from the configuration).
#[derive(Clone, Debug)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// Subjects under `prefix` (dot-separated tokens of `[A-Za-z0-9_-]`).
    pub fn new(prefix: &str) -> Result<Self, ControlError> {
        if prefix.is_empty() || !prefix.split('.').all(valid_token) {
            return Err(ControlError::BadName("conference.control.subject_prefix"));
        }
        Ok(Subjects {
            prefix: prefix.to_owned(),
        })
    }

    /// Heartbeats and goodbyes of every unit.
    pub fn announce(&self) -> String {
        format!("{}.announce", self.prefix)
    }

    /// Requests to one unit (request/reply).
    pub fn rpc(&self, unit: &str) -> String {
        format!("{}.unit.{unit}.rpc", self.prefix)
    }

    /// Notices from one unit.
    pub fn events(&self, unit: &str) -> String {
        format!("{}.unit.{unit}.events", self.prefix)
    }

    /// Notices from every unit (the bridge's subscription).
    pub fn all_events(&self) -> String {
        format!("{}.unit.*.events", self.prefix)
    }

    /// The unit name in an events subject, if it is one of ours.
    pub fn unit_of_events<'a>(&self, subject: &'a str) -> Option<&'a str> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix(".unit.")?;
        let unit = rest.strip_suffix(".events")?;
        valid_token(unit).then_some(unit)
    }
}

/// A single subject token: no wildcard, separator or whitespace can be smuggled in.
pub fn valid_token(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A unit name from the configuration, or the host name with a random suffix.
pub fn unit_name(control: &ControlConfig) -> Result<String, ControlError> {
    if let Some(name) = &control.unit_name {
        return if valid_token(name) {
            Ok(name.clone())
        } else {
            Err(ControlError::BadName("conference.control.unit_name"))
        };
    }
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let host = if host.is_empty() { "unit".into() } else { host };
    Ok(format!("{host}-{}", nuid_suffix()))
}

fn nuid_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:08x}", nanos ^ std::process::id().rotate_left(16))
}

/// Connects to NATS with the configured credentials; `name` identifies the connection in the
/// server's monitoring.
pub async fn connect(
    control: &ControlConfig,
    name: &str,
) -> Result<async_nats::Client, ControlError> {
    let url = control
        .nats_url
        .as_ref()
        .filter(|u| !u.is_empty())
        .ok_or(ControlError::NotConfigured)?;
    let mut options = match &control.credentials_file {
        Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
            .await
            .map_err(ControlError::Credentials)?,
        None => async_nats::ConnectOptions::new(),
    };
    if let Some(token) = control.token.as_ref().filter(|t| !t.is_empty()) {
        options = options.token(token.expose().to_owned());
    }
    if let Some(user) = &control.user {
        let password = control
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        options = options.user_and_password(user.clone(), password);
    }
    let options = options
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(Duration::from_millis(
            control.request_timeout_ms.max(100),
        )))
        .max_reconnects(None);
    options
        .connect(url.expose())
        .await
        .map_err(|e| ControlError::Connect(redact(&e.to_string(), control)))
}

/// `text` without any configured secret (NATS errors may echo the URL).
fn redact(text: &str, control: &ControlConfig) -> String {
    let mut out = text.to_owned();
    for secret in [&control.nats_url, &control.token, &control.password]
        .into_iter()
        .flatten()
    {
        if !secret.is_empty() {
            out = out.replace(secret.expose(), "[redacted]");
        }
    }
    out
}

/// The configured NATS servers with any `user:password@` removed, for banners and logs.
pub fn display_url(control: &ControlConfig) -> String {
    let Some(url) = control.nats_url.as_ref() else {
        return String::new();
    };
    url.expose()
        .split(',')
        .map(|u| match (u.find("://"), u.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}{}", &u[..s + 3], &u[at + 1..]),
            (None, Some(at)) => u[at + 1..].to_owned(),
            _ => u.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use iris_model::Secret;

    #[test]
    fn subjects_refuse_wildcards_and_separators() {
        assert!(Subjects::new("iris.conference").is_ok());
        for bad in ["", "a.*", "a.>", "a b", "a..b", "a.b."] {
            assert!(Subjects::new(bad).is_err(), "{bad:?}");
        }
        let s = Subjects::new("x.y").expect("valid");
        assert_eq!(s.unit_of_events("x.y.unit.u1.events"), Some("u1"));
        assert_eq!(s.unit_of_events("x.y.unit.a.b.events"), None);
        assert_eq!(s.unit_of_events("other.unit.u1.events"), None);
        assert!(!valid_token("u*"));
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        let control = ControlConfig {
            nats_url: Some(Secret::new("nats://u:pw@h1:4222,tls://h2:4443")),
            ..ControlConfig::default()
        };
        assert_eq!(display_url(&control), "nats://h1:4222,tls://h2:4443");
        let text = redact("connect nats://u:pw@h1:4222,tls://h2:4443 failed", &control);
        assert!(!text.contains("pw"), "{text}");
        assert!(!format!("{control:?}").contains("pw"));
    }
}
