//! Feeds arbitrary bytes to the XMPP stream machine on every transport, answering driver
//! events the permissive way and echoing stanzas back (so peer-built elements are serialised).
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use iris_xmpp::{Config, Event, Output, ServerStream, Transport};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let transport = match mode % 3 {
        0 => Transport::WebSocket,
        1 => Transport::TcpStartTls,
        _ => Transport::DirectTls,
    };
    let chunk = usize::from(mode / 3 % 32) + 1;
    let mut now = Instant::now();
    let config = Arc::new(Config::new(vec!["example.com".to_owned()]));
    let mut s = ServerStream::new(config, transport, now, [1; 32]);
    // a fixed prefix gets the machine past the header so the fuzzer reaches deeper states
    let prefix: &[u8] = match transport {
        Transport::WebSocket => {
            b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>"
        }
        _ => b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>",
    };
    s.handle_input(now, prefix);
    // WebSocket messages are separated by NUL (never valid XML); streams are cut every `chunk`
    let pieces: Vec<&[u8]> = if transport == Transport::WebSocket {
        rest.split(|b| *b == 0).collect()
    } else {
        rest.chunks(chunk).collect()
    };
    for piece in pieces {
        if transport == Transport::WebSocket {
            s.handle_ws_message(now, &String::from_utf8_lossy(piece));
        } else {
            s.handle_input(now, piece);
        }
        while let Some(out) = s.poll_output() {
            match out {
                Output::Event(Event::StartTls) => {
                    let _ = s.tls_established(Default::default());
                }
                Output::Event(Event::VerifyPlain { .. }) => {
                    let _ = s.plain_result(true);
                }
                Output::Event(Event::VerifyToken { .. }) => {
                    let _ = s.token_result(Some("alice".to_owned()));
                }
                Output::Event(Event::NeedCredentials { .. }) => {
                    let _ = s.credentials_not_found();
                }
                Output::Event(Event::BindRequest { suggested, .. }) => {
                    let jid = format!("{}@example.com/{suggested}", s.username().unwrap_or("x"));
                    let _ = s.bind_result(&jid);
                }
                Output::Event(Event::ResumeRequest { .. }) => {
                    let _ = s.resume_failed();
                }
                Output::Event(Event::Stanza(el)) => {
                    let _ = s.send_stanza(&el);
                    s.ack_inbound(1);
                }
                _ => {}
            }
        }
        now += Duration::from_secs(1);
        s.handle_timeout(now);
    }
});
