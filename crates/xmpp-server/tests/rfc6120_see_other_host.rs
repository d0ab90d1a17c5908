//! RFC 6120 §4.9.3.19 / RFC 7395 §3.6.1 over real sockets: a server that stops sends its
//! clients to the configured other host (`<see-other-host/>` on TCP, `see-other-uri` on
//! WebSocket), and ends streams with `<system-shutdown/>` when none is configured.
mod common;

use common::{bounded, start, Auth, Client, Via};

#[tokio::test]
async fn rfc6120_4_9_3_19_draining_server_sends_clients_elsewhere() {
    bounded(async {
        let mut s = start(|c| {
            c.see_other_host = Some("xmpp2.example.com:5222".into());
            c.see_other_uri = Some("wss://xmpp2.example.com/xmpp-websocket".into());
        })
        .await;
        let mut tcp = Client::login(&s, Via::StartTls, "alice", Auth::Plain, "tcp").await;
        let mut tls = Client::login(&s, Via::DirectTls, "bob", Auth::Plain, "tls").await;
        let mut ws = Client::login(&s, Via::Ws, "carol", Auth::Plain, "ws").await;
        let stop = tokio::spawn(s.handle.take().expect("running").shutdown());
        for c in [&mut tcp, &mut tls] {
            let err = c.expect("</stream:error>").await;
            assert!(
                err.contains("<see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>xmpp2.example.com:5222</see-other-host>"),
                "{err}"
            );
            c.expect("</stream:stream>").await;
        }
        let close = ws.expect("see-other-uri=").await;
        let uri = ws.expect("/>").await;
        assert!(close.contains("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'"), "{close}");
        assert_eq!(uri, "'wss://xmpp2.example.com/xmpp-websocket'/>");
        stop.await.expect("shutdown");

        // without a configured host: system-shutdown
        let mut s = start(|_| {}).await;
        let mut tcp = Client::login(&s, Via::StartTls, "alice", Auth::Plain, "tcp").await;
        let stop = tokio::spawn(s.handle.take().expect("running").shutdown());
        let err = tcp.expect("</stream:error>").await;
        assert!(err.contains("<system-shutdown") && !err.contains("see-other-host"), "{err}");
        stop.await.expect("shutdown");
    })
    .await;
}
