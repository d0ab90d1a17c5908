//! Small helpers: JIDs, element construction, XEP-0082 timestamps, random ids; no I/O.
use iris_xmpp::Element;

/// Namespaces handled by the server, in one place.
pub mod ns {
    pub const CLIENT: &str = "jabber:client";
    pub const ROSTER: &str = "jabber:iq:roster";
    pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
    pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
    pub const PING: &str = "urn:xmpp:ping";
    pub const VCARD: &str = "vcard-temp";
    pub const PRIVATE: &str = "jabber:iq:private";
    pub const BLOCKING: &str = "urn:xmpp:blocking";
    pub const CARBONS: &str = "urn:xmpp:carbons:2";
    pub const FORWARD: &str = "urn:xmpp:forward:0";
    pub const DELAY: &str = "urn:xmpp:delay";
    pub const MAM: &str = "urn:xmpp:mam:2";
    pub const RSM: &str = "http://jabber.org/protocol/rsm";
    pub const DATA: &str = "jabber:x:data";
    pub const SID: &str = "urn:xmpp:sid:0";
    pub const HINTS: &str = "urn:xmpp:hints";
    pub const LAST: &str = "jabber:iq:last";
    pub const VERSION: &str = "jabber:iq:version";
    pub const MSGOFFLINE: &str = "msgoffline";
}

/// A parsed JID `local@domain/resource` (localpart and domain lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jid {
    pub local: Option<String>,
    pub domain: String,
    pub resource: Option<String>,
}

impl Jid {
    /// Parses a JID; `None` when it is empty or malformed.
    pub fn parse(s: &str) -> Option<Jid> {
        let (bare, resource) = match s.split_once('/') {
            Some((b, r)) if !r.is_empty() => (b, Some(r.to_owned())),
            Some(_) => return None,
            None => (s, None),
        };
        let (local, domain) = match bare.split_once('@') {
            Some((l, d)) if !l.is_empty() => (Some(l.to_lowercase()), d),
            Some(_) => return None,
            None => (None, bare),
        };
        if domain.is_empty() || domain.contains('@') || s.len() > 3071 {
            return None;
        }
        Some(Jid {
            local,
            domain: domain.to_ascii_lowercase(),
            resource,
        })
    }

    /// `local@domain` (or `domain`).
    pub fn bare(&self) -> String {
        match &self.local {
            Some(l) => format!("{l}@{}", self.domain),
            None => self.domain.clone(),
        }
    }
}

/// The bare part of a JID string (everything before `/`).
pub fn bare_of(jid: &str) -> &str {
    jid.split_once('/').map(|(b, _)| b).unwrap_or(jid)
}

/// An element with unqualified attributes.
pub fn el(name: &str, ns: &str, attrs: &[(&str, &str)]) -> Element {
    let mut e = Element::bare(name, ns);
    for (k, v) in attrs {
        iris_xmpp::wire::set_attr(&mut e, k, v);
    }
    e
}

/// An element with attributes and one text child.
pub fn text_el(name: &str, ns: &str, text: &str) -> Element {
    let mut e = Element::bare(name, ns);
    e.append_text(text);
    e
}

/// Sets (or replaces) an unqualified attribute.
pub fn set(e: &mut Element, name: &str, value: &str) {
    iris_xmpp::wire::set_attr(e, name, value);
}

/// A fresh random id (128 bits, URL-safe).
pub fn random_id() -> String {
    use rand::Rng;
    let v: u128 = rand::thread_rng().gen();
    format!("{v:032x}")
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// XEP-0082 `DateTime` in UTC with milliseconds, e.g. `2026-11-22T03:04:05.678Z`.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        ms.rem_euclid(1000)
    )
}

/// Parses an XEP-0082 `DateTime` (`YYYY-MM-DDThh:mm:ss[.sss](Z|±hh:mm)`) to Unix ms.
pub fn parse_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20 || b.get(4) != Some(&b'-') || b.get(10) != Some(&b'T') {
        return None;
    }
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = s.get(start..i)?;
        let padded: String = digits.chars().chain("000".chars()).take(3).collect();
        frac_ms = padded.parse().ok()?;
    }
    let offset_min = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() => {
            let v = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Some(secs * 1000 + frac_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xep0082_round_trip() {
        let t = parse_time("2026-11-22T03:04:05.678Z").expect("valid");
        assert_eq!(format_time(t), "2026-11-22T03:04:05.678Z");
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_time("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn rfc7622_jid_parts() {
        let j = Jid::parse("Alice@Example.com/Phone/1").expect("valid");
        assert_eq!(j.bare(), "alice@example.com");
        assert_eq!(j.resource.as_deref(), Some("Phone/1"));
        assert!(Jid::parse("@example.com").is_none());
        assert!(Jid::parse("a@b/").is_none());
    }
}
