//! Arbitrary XML payloads through the conference signalling parser: never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let wrapped = format!("<join xmlns='urn:xmpp:iris:conference:0'>{text}</join>");
    for xml in [text, wrapped.as_str()] {
        if let Ok(e) = xml.parse::<iris_xmpp::Element>() {
            let _ = iris_conference::signal::parse(&e);
        }
    }
});
