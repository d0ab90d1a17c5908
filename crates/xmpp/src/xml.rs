//! Restricted XML (RFC 6120 §11) on top of `rxml`: turns bytes into a stream header, complete
//! top-level elements (`minidom::Element`) and the stream end, enforcing [`Limits`]; it does
//! not interpret what the elements mean.
//!
//! `rxml` already rejects DTDs, entity declarations and references other than the five
//! predefined ones, processing instructions and comments; this module adds size, depth and
//! attribute limits and maps every failure to a [`StreamErrorCause`].

use minidom::Element;
use rxml::error::EndOrError;
use rxml::{Event as RxmlEvent, Parse, Parser, WithOptions};

use crate::error::StreamErrorCause;
use crate::limits::Limits;
use crate::ns;

/// The most bytes handed to `rxml` in one call, so limits are checked at least this often
/// even if the driver passes one huge buffer.
const FEED_CHUNK: usize = 4096;

/// Attributes of a stream header (RFC 6120 §4.7), or of a WebSocket `<open/>` (RFC 7395 §3.3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamHeader {
    /// `to`: the domain the client wants to reach.
    pub to: Option<String>,
    /// `from`: the client's claimed JID.
    pub from: Option<String>,
    /// `version`: must be 1.x.
    pub version: Option<String>,
    /// `xml:lang`: default language of the stream.
    pub lang: Option<String>,
}

/// One unit of a stream.
#[derive(Debug, Clone, PartialEq)]
pub enum XmlEvent {
    /// `<stream:stream …>` was received.
    StreamOpen(StreamHeader),
    /// A complete top-level element (stanza or nonza).
    Element(Element),
    /// `</stream:stream>` was received.
    StreamClose,
}

/// Incremental reader of one XML stream (one document: a restart needs a new reader).
pub struct XmlReader {
    parser: Parser,
    limits: Limits,
    /// true once the `<stream:stream>` root is open
    stream_open: bool,
    /// the element being assembled, root first
    stack: Vec<Element>,
    /// bytes consumed since the last completed top-level unit
    unit_bytes: usize,
    /// elements started in the current top-level element
    unit_elements: usize,
    failed: Option<StreamErrorCause>,
}

impl XmlReader {
    /// A reader for a new stream with the given limits.
    pub fn new(limits: &Limits) -> Self {
        Self {
            parser: new_parser(limits),
            limits: limits.clone(),
            stream_open: false,
            stack: Vec::new(),
            unit_bytes: 0,
            unit_elements: 0,
            failed: None,
        }
    }

    /// Consume bytes from `input` until one [`XmlEvent`] is complete (returned, with the rest
    /// of `input` left unconsumed) or `input` is exhausted (`Ok(None)`). After an error every
    /// later call returns the same error.
    pub fn next(&mut self, input: &mut &[u8]) -> Result<Option<XmlEvent>, StreamErrorCause> {
        if let Some(cause) = &self.failed {
            return Err(cause.clone());
        }
        let result = self.next_inner(input);
        if let Err(cause) = &result {
            self.failed = Some(cause.clone());
        }
        result
    }

    fn next_inner(&mut self, input: &mut &[u8]) -> Result<Option<XmlEvent>, StreamErrorCause> {
        loop {
            // called even with no input left: rxml may hold a complete event (the end of a
            // self-closing element) that it only yields on the next call
            let take = input.len().min(FEED_CHUNK);
            let (head, tail) = input.split_at(take);
            let mut chunk = head;
            let result = self.parser.parse(&mut chunk, false);
            let consumed = take - chunk.len();
            self.unit_bytes = self.unit_bytes.saturating_add(consumed);
            // give back what rxml did not consume
            debug_assert_eq!(input.len(), take + tail.len());
            *input = input.get(consumed..).unwrap_or_default();
            if self.unit_bytes > self.limits.max_stanza_bytes {
                return Err(StreamErrorCause::StanzaTooLarge);
            }
            match result {
                Err(EndOrError::NeedMoreData) if input.is_empty() => return Ok(None),
                Err(EndOrError::NeedMoreData) => continue,
                Err(EndOrError::Error(e)) => return Err(map_rxml_error(e)),
                Ok(None) => return Err(StreamErrorCause::MalformedXml),
                Ok(Some(ev)) => {
                    if let Some(out) = self.on_event(ev)? {
                        self.unit_bytes = 0;
                        return Ok(Some(out));
                    }
                }
            }
        }
    }

    fn on_event(&mut self, ev: RxmlEvent) -> Result<Option<XmlEvent>, StreamErrorCause> {
        match ev {
            RxmlEvent::XmlDeclaration(..) => Ok(None),
            RxmlEvent::StartElement(_, (ns_uri, name), attrs) => {
                if !self.stream_open {
                    if ns_uri.as_str() != ns::STREAM || name.as_str() != "stream" {
                        return Err(StreamErrorCause::BadNamespace);
                    }
                    self.stream_open = true;
                    return Ok(Some(XmlEvent::StreamOpen(header_from_attrs(&attrs))));
                }
                self.start_element(ns_uri.as_str(), name.as_str(), attrs)?;
                Ok(None)
            }
            RxmlEvent::EndElement(_) => match self.stack.pop() {
                None => Ok(Some(XmlEvent::StreamClose)),
                Some(done) => match self.stack.last_mut() {
                    Some(parent) => {
                        parent.append_child(done);
                        Ok(None)
                    }
                    None => Ok(Some(XmlEvent::Element(done))),
                },
            },
            RxmlEvent::Text(_, text) => match self.stack.last_mut() {
                Some(top) => {
                    top.append_text(text);
                    Ok(None)
                }
                None => {
                    if text.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n')) {
                        // whitespace keepalive between top-level elements
                        self.unit_bytes = 0;
                        Ok(None)
                    } else {
                        Err(StreamErrorCause::TextAtTopLevel)
                    }
                }
            },
        }
    }

    fn start_element(
        &mut self,
        ns_uri: &str,
        name: &str,
        attrs: rxml::AttrMap,
    ) -> Result<(), StreamErrorCause> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(StreamErrorCause::TooDeep);
        }
        if attrs.len() > self.limits.max_attributes {
            return Err(StreamErrorCause::TooManyAttributes);
        }
        if self.stack.is_empty() {
            self.unit_elements = 0;
        }
        self.unit_elements += 1;
        if self.unit_elements > self.limits.max_elements {
            return Err(StreamErrorCause::TooManyElements);
        }
        let mut el = Element::bare(name, ns_uri);
        *el.attrs_mut() = attrs;
        self.stack.push(el);
        Ok(())
    }
}

/// Parse one WebSocket message (RFC 7395 §3.3.3: exactly one top-level element, a complete
/// document) under `limits`. Whitespace-only messages give `Ok(None)`.
pub fn parse_document(limits: &Limits, message: &str) -> Result<Option<Element>, StreamErrorCause> {
    if message.len() > limits.max_stanza_bytes {
        return Err(StreamErrorCause::StanzaTooLarge);
    }
    if message
        .chars()
        .all(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
    {
        return Ok(None);
    }
    let mut reader = XmlReader::new(limits);
    // a WebSocket message has no stream wrapper: pretend the stream is open so the first
    // element is assembled as a top-level element
    reader.stream_open = true;
    let mut input = message.as_bytes();
    let mut found = None;
    loop {
        let before = input.len();
        let result = reader.parser.parse(&mut input, true);
        let consumed = before - input.len();
        reader.unit_bytes = reader.unit_bytes.saturating_add(consumed);
        match result {
            Err(EndOrError::NeedMoreData) => return Err(StreamErrorCause::MalformedXml),
            Err(EndOrError::Error(e)) => return Err(map_rxml_error(e)),
            Ok(None) => return found.ok_or(StreamErrorCause::MalformedXml),
            Ok(Some(ev)) => match reader.on_event(ev)? {
                Some(XmlEvent::Element(el)) => {
                    if found.is_some() {
                        return Err(StreamErrorCause::MalformedXml);
                    }
                    found = Some(Some(el));
                }
                Some(_) => return Err(StreamErrorCause::MalformedXml),
                None => {}
            },
        }
    }
}

fn new_parser(limits: &Limits) -> Parser {
    Parser::with_options(rxml::Options {
        max_token_length: limits.max_token_bytes.max(64),
        ..Default::default()
    })
}

fn header_from_attrs(attrs: &rxml::AttrMap) -> StreamHeader {
    let none = rxml::Namespace::none();
    let get = |name: &str| attrs.get(none, name).cloned();
    StreamHeader {
        to: get("to"),
        from: get("from"),
        version: get("version"),
        lang: attrs.get(rxml::Namespace::xml(), "lang").cloned(),
    }
}

/// The one mapping from `rxml` failures to causes.
fn map_rxml_error(e: rxml::Error) -> StreamErrorCause {
    match e {
        rxml::Error::RestrictedXml("long name or reference") => StreamErrorCause::TokenTooLong,
        rxml::Error::RestrictedXml("event too long") => StreamErrorCause::StanzaTooLarge,
        rxml::Error::RestrictedXml("only utf-8 encoding is allowed") => StreamErrorCause::NotUtf8,
        // `<!` not followed by `--` or `[CDATA[`: a DOCTYPE / ENTITY / ATTLIST declaration
        rxml::Error::InvalidSyntax("malformed cdata or comment section start") => {
            StreamErrorCause::ForbiddenXml
        }
        rxml::Error::RestrictedXml(_) | rxml::Error::UndeclaredEntity => {
            StreamErrorCause::ForbiddenXml
        }
        rxml::Error::InvalidUtf8Byte(_) => StreamErrorCause::NotUtf8,
        _ => StreamErrorCause::MalformedXml,
    }
}
