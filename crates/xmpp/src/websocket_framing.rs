//! RFC 7395 framing: recognises `<open/>` and `<close/>` in WebSocket messages; it does not do
//! the WebSocket handshake or frame parsing (the driver does), nor parse XML (see [`crate::xml`]).

use minidom::Element;

use crate::ns;
use crate::xml::StreamHeader;

/// What one WebSocket message carried.
#[derive(Debug, Clone, PartialEq)]
pub enum WsFrame {
    /// `<open/>` (RFC 7395 §3.3.1): the stream (re)starts.
    Open(StreamHeader),
    /// `<close/>` (RFC 7395 §3.3.2); `see-other-uri` is ignored on the server side.
    Close,
    /// Any other top-level element.
    Element(Element),
}

/// Classify a parsed WebSocket message.
pub fn classify(el: Element) -> WsFrame {
    if el.is("open", ns::FRAMING) {
        WsFrame::Open(StreamHeader {
            to: el.attr("to").map(str::to_owned),
            from: el.attr("from").map(str::to_owned),
            version: el.attr("version").map(str::to_owned),
            lang: el
                .attr_ns(rxml::Namespace::xml(), "lang")
                .map(str::to_owned),
        })
    } else if el.is("close", ns::FRAMING) {
        WsFrame::Close
    } else {
        WsFrame::Element(el)
    }
}
