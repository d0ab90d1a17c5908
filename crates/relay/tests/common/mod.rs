//! A minimal async TURN client over real sockets, for the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

pub mod mmdb;

use iris_relay::{Relay, RelayConfig, RelayHandle, Secret};
use iris_stun::framing;
use iris_stun::{long_term_key, Attribute, Class, Message, MessageBuilder, Method, TransactionId};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub const WAIT: Duration = Duration::from_secs(5);

pub fn config() -> RelayConfig {
    let mut c = RelayConfig {
        realm: "iris.test".to_owned(),
        udp_listen: vec!["127.0.0.1:0".parse().unwrap()],
        tcp_listen: vec!["127.0.0.1:0".parse().unwrap()],
        relay_ips: vec!["127.0.0.1".parse().unwrap()],
        allow_peers: vec!["127.0.0.0/8".to_owned()],
        udp_workers: 2,
        ..RelayConfig::default()
    };
    c.users
        .insert("alice".to_owned(), Secret::new("alice-pass"));
    c
}

pub async fn start(config: RelayConfig) -> RelayHandle {
    Relay::start(config).await.unwrap()
}

pub enum Conn {
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream, Vec<u8>),
}

impl Conn {
    pub async fn udp(server: SocketAddr) -> Self {
        Conn::Udp(UdpSocket::bind("127.0.0.1:0").await.unwrap(), server)
    }

    pub async fn tcp(server: SocketAddr) -> Self {
        Conn::Tcp(TcpStream::connect(server).await.unwrap(), Vec::new())
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        match self {
            Conn::Udp(s, server) => {
                s.send_to(bytes, *server).await.unwrap();
            }
            Conn::Tcp(s, _) => {
                s.write_all(bytes).await.unwrap();
                let pad = framing::stream_padding(bytes.len());
                if bytes.first().is_some_and(|b| (0x40..0x50).contains(b)) && pad > 0 {
                    s.write_all(&[0; 3][..pad]).await.unwrap();
                }
            }
        }
    }

    /// One datagram or one stream frame (without padding).
    pub async fn recv(&mut self) -> Vec<u8> {
        tokio::time::timeout(WAIT, self.recv_inner())
            .await
            .expect("nothing received in time")
    }

    async fn recv_inner(&mut self) -> Vec<u8> {
        match self {
            Conn::Udp(s, _) => {
                let mut buf = vec![0; 70_000];
                let (n, _) = s.recv_from(&mut buf).await.unwrap();
                buf.truncate(n);
                buf
            }
            Conn::Tcp(s, pending) => loop {
                if let Some(f) = framing::frame(pending).unwrap() {
                    let frame = pending[..f.len].to_vec();
                    pending.drain(..f.consumed);
                    return frame;
                }
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed");
                pending.extend_from_slice(&chunk[..n]);
            },
        }
    }
}

pub struct TurnClient {
    pub conn: Conn,
    pub username: String,
    pub password: String,
    pub realm: Option<String>,
    pub nonce: Option<String>,
    pub counter: u32,
}

impl TurnClient {
    pub fn new(conn: Conn, username: &str, password: &str) -> Self {
        TurnClient {
            conn,
            username: username.to_owned(),
            password: password.to_owned(),
            realm: None,
            nonce: None,
            counter: 0,
        }
    }

    fn tid(&mut self) -> TransactionId {
        self.counter += 1;
        let mut t = [7u8; 12];
        t[..4].copy_from_slice(&self.counter.to_be_bytes());
        TransactionId(t)
    }

    fn request(&mut self, method: Method, attrs: &[Attribute<'_>]) -> Vec<u8> {
        let tid = self.tid();
        let mut b = MessageBuilder::new(Class::Request, method, tid);
        for a in attrs {
            b.add(a);
        }
        if let (Some(realm), Some(nonce)) = (&self.realm, &self.nonce) {
            b.add(&Attribute::Username(&self.username));
            b.add(&Attribute::Realm(realm));
            b.add(&Attribute::Nonce(nonce));
            b.add_message_integrity(&long_term_key(&self.username, realm, &self.password).unwrap());
        }
        b.add_fingerprint();
        b.finish().unwrap()
    }

    /// A request and its response, answering 401/438 challenges.
    pub async fn transact(&mut self, method: Method, attrs: &[Attribute<'_>]) -> Vec<u8> {
        for _ in 0..3 {
            let req = self.request(method, attrs);
            self.conn.send(&req).await;
            let resp = loop {
                let r = self.conn.recv().await;
                if iris_stun::classify(&r) == iris_stun::PacketKind::Stun
                    && Message::parse(&r).unwrap().class() != Class::Indication
                {
                    break r;
                }
            };
            let m = Message::parse(&resp).unwrap();
            let code = m.error_code().unwrap().map(|e| e.code);
            if code == Some(438) || (code == Some(401) && self.nonce.is_none()) {
                self.realm = m.realm().unwrap().map(str::to_owned);
                self.nonce = m.nonce().unwrap().map(str::to_owned);
                continue;
            }
            return resp;
        }
        panic!("challenge loop");
    }

    pub async fn allocate(&mut self) -> SocketAddr {
        let resp = self
            .transact(Method::ALLOCATE, &[Attribute::RequestedTransport(17)])
            .await;
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.class(), Class::Success, "allocate: {:?}", m.error_code());
        m.xor_relayed_address().unwrap().unwrap()
    }

    pub async fn expect_success(&mut self, method: Method, attrs: &[Attribute<'_>]) {
        let resp = self.transact(method, attrs).await;
        let m = Message::parse(&resp).unwrap();
        assert_eq!(
            m.class(),
            Class::Success,
            "{method:?}: {:?}",
            m.error_code()
        );
    }

    pub async fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        let tid = self.tid();
        let mut b = MessageBuilder::new(Class::Indication, Method::SEND, tid);
        b.add(&Attribute::XorPeerAddress(peer));
        b.add(&Attribute::Data(data));
        let bytes = b.finish().unwrap();
        self.conn.send(&bytes).await;
    }
}

pub async fn peer_recv(peer: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0; 2048];
    let (n, from) = tokio::time::timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .expect("peer got nothing")
        .unwrap();
    buf.truncate(n);
    (buf, from)
}

/// A UDP client "alice" with an allocation and channel 0x4000 bound to `peer`; returns the
/// client and its relayed address.
pub async fn alice_with_channel(
    handle: &RelayHandle,
    peer: SocketAddr,
) -> (TurnClient, SocketAddr) {
    alice_with_channels(handle, &[peer]).await
}

/// A UDP client "alice" with an allocation and a channel (0x4000, 0x4001…) to each of
/// `peers`; returns the client and its relayed address.
pub async fn alice_with_channels(
    handle: &RelayHandle,
    peers: &[SocketAddr],
) -> (TurnClient, SocketAddr) {
    let mut client = TurnClient::new(
        Conn::udp(handle.udp_addrs()[0]).await,
        "alice",
        "alice-pass",
    );
    let relayed = client.allocate().await;
    for (i, peer) in peers.iter().enumerate() {
        client
            .expect_success(
                Method::CHANNEL_BIND,
                &[
                    Attribute::ChannelNumber(0x4000 + i as u16),
                    Attribute::XorPeerAddress(*peer),
                ],
            )
            .await;
    }
    (client, relayed)
}
