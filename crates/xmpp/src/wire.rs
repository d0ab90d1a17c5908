//! Serialisation helpers and small builders for what the server writes: stream headers,
//! features, stream errors, SASL replies, stanza errors and IQ results. It does not parse.

use std::borrow::Cow;

use minidom::Element;

use crate::error::{SaslCondition, StanzaErrorCondition, StanzaErrorType, StreamError};
use crate::ns;

/// How top-level elements are framed on the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One XML document per stream (RFC 6120): `<stream:stream>` … `</stream:stream>`.
    Stream,
    /// One element per WebSocket message (RFC 7395): `<open/>` … `<close/>`.
    WebSocket,
}

/// Escape text for an attribute value in single quotes.
pub fn escape_attr(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// Escape character data.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

fn escape(s: &str, attr: bool) -> Cow<'_, str> {
    let needs = |c: char| matches!(c, '<' | '>' | '&') || (attr && matches!(c, '\'' | '"'));
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' if attr => out.push_str("&apos;"),
            '"' if attr => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The server's stream header (RFC 6120 §4.7) or WebSocket `<open/>` (RFC 7395 §3.3.1).
pub fn stream_open(framing: Framing, from: &str, id: &str, to: Option<&str>, lang: &str) -> String {
    let mut attrs = format!(
        " from='{}' id='{}' version='1.0' xml:lang='{}'",
        escape_attr(from),
        escape_attr(id),
        escape_attr(lang)
    );
    if let Some(to) = to {
        attrs.push_str(&format!(" to='{}'", escape_attr(to)));
    }
    match framing {
        Framing::Stream => format!(
            "<?xml version='1.0'?><stream:stream xmlns='{}' xmlns:stream='{}'{}>",
            ns::CLIENT,
            ns::STREAM,
            attrs
        ),
        Framing::WebSocket => format!("<open xmlns='{}'{}/>", ns::FRAMING, attrs),
    }
}

/// The end of the server's stream.
pub fn stream_close(framing: Framing) -> String {
    match framing {
        Framing::Stream => "</stream:stream>".to_owned(),
        Framing::WebSocket => format!("<close xmlns='{}'/>", ns::FRAMING),
    }
}

/// `<stream:features>` around already serialised children.
pub fn features(framing: Framing, children: &str) -> String {
    match framing {
        Framing::Stream => format!("<stream:features>{children}</stream:features>"),
        Framing::WebSocket => format!(
            "<stream:features xmlns:stream='{}'>{children}</stream:features>",
            ns::STREAM
        ),
    }
}

/// `<stream:error>` (RFC 6120 §4.9) for a stream error; the stream close follows separately.
pub fn stream_error(framing: Framing, error: &StreamError) -> String {
    let decl = match framing {
        Framing::Stream => String::new(),
        Framing::WebSocket => format!(" xmlns:stream='{}'", ns::STREAM),
    };
    let text = error
        .cause
        .text()
        .map(|t| {
            format!(
                "<text xmlns='{}'>{}</text>",
                ns::STREAM_ERRORS,
                escape_text(t)
            )
        })
        .unwrap_or_default();
    let mut extra = String::new();
    if let crate::error::StreamErrorCause::AckCountTooHigh = error.cause {
        extra = format!("<handled-count-too-high xmlns='{}'/>", ns::SM);
    }
    let condition = match &error.cause {
        crate::error::StreamErrorCause::SeeOtherHost(host) => format!(
            "<see-other-host xmlns='{}'>{}</see-other-host>",
            ns::STREAM_ERRORS,
            escape_text(host)
        ),
        _ => format!(
            "<{} xmlns='{}'/>",
            error.condition().as_str(),
            ns::STREAM_ERRORS
        ),
    };
    format!("<stream:error{decl}>{condition}{text}{extra}</stream:error>")
}

/// RFC 7395 §3.6.1: the WebSocket close that sends the client to another endpoint.
pub fn ws_see_other_uri(uri: &str) -> String {
    format!(
        "<close xmlns='{}' see-other-uri='{}'/>",
        ns::FRAMING,
        escape_attr(uri)
    )
}

/// SASL `<challenge>` with base64 data (RFC 6120 §6.4.2).
pub fn sasl_challenge(data: &[u8]) -> String {
    format!("<challenge xmlns='{}'>{}</challenge>", ns::SASL, b64(data))
}

/// SASL `<success>` with optional additional data (RFC 6120 §6.4.6, `=` for none is not
/// needed: an empty element means no data).
pub fn sasl_success(data: Option<&[u8]>) -> String {
    match data {
        Some(d) if !d.is_empty() => {
            format!("<success xmlns='{}'>{}</success>", ns::SASL, b64(d))
        }
        _ => format!("<success xmlns='{}'/>", ns::SASL),
    }
}

/// SASL `<failure>` (RFC 6120 §6.5).
pub fn sasl_failure(condition: SaslCondition) -> String {
    format!(
        "<failure xmlns='{}'><{}/></failure>",
        ns::SASL,
        condition.as_str()
    )
}

/// Base64 (standard alphabet with padding) as SASL uses it.
pub fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Serialise an element (with its namespace declared on the root).
pub fn element_to_string(el: &Element) -> Option<String> {
    let mut out = Vec::new();
    el.write_to(&mut out).ok()?;
    String::from_utf8(out).ok()
}

/// Set an unqualified attribute on an element (ignored if `name` is not an NCName, which
/// cannot happen with the constant names this crate uses).
pub fn set_attr(el: &mut Element, name: &str, value: &str) {
    if let Ok(name) = rxml::NcName::try_from(name) {
        el.attrs_mut()
            .insert(rxml::Namespace::NONE, name, value.to_owned());
    }
}

/// Remove an unqualified attribute.
pub fn remove_attr(el: &mut Element, name: &str) {
    el.attrs_mut().remove(rxml::Namespace::none(), name);
}

/// The reply skeleton to a stanza: same name and namespace, `to`/`from` swapped, `id` kept.
fn reply_to(stanza: &Element, kind: &str) -> Element {
    let mut el = Element::bare(stanza.name(), stanza.ns());
    if let Some(from) = stanza.attr("from") {
        set_attr(&mut el, "to", from);
    }
    if let Some(to) = stanza.attr("to") {
        set_attr(&mut el, "from", to);
    }
    if let Some(id) = stanza.attr("id") {
        set_attr(&mut el, "id", id);
    }
    set_attr(&mut el, "type", kind);
    el
}

/// An error reply to `stanza` (RFC 6120 §8.3): `type='error'`, `to`/`from` swapped, `id`
/// kept, `<error type=…><condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`.
pub fn stanza_error(
    stanza: &Element,
    error_type: StanzaErrorType,
    condition: StanzaErrorCondition,
    text: Option<&str>,
) -> Element {
    let mut reply = reply_to(stanza, "error");
    let mut error = Element::bare("error", stanza.ns());
    set_attr(&mut error, "type", error_type.as_str());
    error.append_child(Element::bare(condition.as_str(), ns::STANZAS));
    if let Some(text) = text {
        let mut t = Element::bare("text", ns::STANZAS);
        t.append_text(text);
        error.append_child(t);
    }
    reply.append_child(error);
    reply
}

/// An IQ result to `iq` (RFC 6120 §8.2.3) with an optional payload.
pub fn iq_result(iq: &Element, payload: Option<Element>) -> Element {
    let mut reply = reply_to(iq, "result");
    if let Some(p) = payload {
        reply.append_child(p);
    }
    reply
}
