//! Virtual-time harness: a server, scripted clients and peers, no sockets.
#![allow(dead_code, clippy::unwrap_used)]

use iris_stun::{long_term_key, Attribute, Class, Message, MessageBuilder, Method, TransactionId};
use iris_turn::{
    Cidr, DefaultPeerPolicy, FiveTuple, Forward, LongTermKey, PortRequest, RelayAllocator,
    RelayAllocatorError, RelayGrant, RelayRequest, RelayedAddress, Server, ServerConfig, Transport,
};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const REALM: &str = "iris.test";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Hands out relay ports on 192.0.2.100 (and [2001:db8::100] when `v6`), records releases.
#[derive(Clone, Default)]
pub struct Ports {
    pub open: Arc<Mutex<HashSet<SocketAddr>>>,
    pub next: Arc<Mutex<u16>>,
    pub v6: bool,
    pub exhausted: Arc<Mutex<bool>>,
}

impl RelayAllocator for Ports {
    fn allocate(&mut self, request: RelayRequest) -> Result<RelayGrant, RelayAllocatorError> {
        if *self.exhausted.lock().unwrap() {
            return Err(RelayAllocatorError::Exhausted);
        }
        let ip: IpAddr = match request.family {
            iris_stun::AddressFamily::V4 => "192.0.2.100".parse().unwrap(),
            iris_stun::AddressFamily::V6 if self.v6 => "2001:db8::100".parse().unwrap(),
            iris_stun::AddressFamily::V6 => return Err(RelayAllocatorError::FamilyNotSupported),
        };
        let mut next = self.next.lock().unwrap();
        if *next == 0 {
            *next = 49152;
        }
        if request.port != PortRequest::Any && *next % 2 == 1 {
            *next += 1;
        }
        let port = *next;
        *next += 2;
        let relayed = RelayedAddress {
            local: SocketAddr::new(ip, port),
            advertised: SocketAddr::new(ip, port),
        };
        let mut open = self.open.lock().unwrap();
        open.insert(relayed.local);
        let reserved_next = (request.port == PortRequest::EvenReserveNext).then(|| {
            let r = SocketAddr::new(ip, port + 1);
            open.insert(r);
            RelayedAddress {
                local: r,
                advertised: r,
            }
        });
        Ok(RelayGrant {
            relayed,
            reserved_next,
        })
    }

    fn release(&mut self, local: SocketAddr) {
        self.open.lock().unwrap().remove(&local);
    }
}

pub fn users() -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert("alice".to_owned(), "alice-pass".to_owned());
    m.insert("bob".to_owned(), "bob-pass".to_owned());
    m
}

pub fn config() -> ServerConfig {
    ServerConfig {
        realm: REALM.to_owned(),
        secret: [42; 32],
        ..ServerConfig::default()
    }
}

pub struct Net {
    pub server: Server,
    pub now: Instant,
    pub server_addr: SocketAddr,
    pub ports: Ports,
}

/// A forward copied out of the borrowed [`Forward`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    ToPeer {
        relayed: SocketAddr,
        peer: SocketAddr,
        data: Vec<u8>,
    },
    ToClient {
        five_tuple: FiveTuple,
        bytes: Vec<u8>,
    },
}

pub fn owned(f: Forward<'_>) -> Out {
    match f {
        Forward::ToPeer {
            relayed,
            peer,
            data,
        } => Out::ToPeer {
            relayed,
            peer,
            data: data.to_vec(),
        },
        Forward::ToClient {
            five_tuple,
            header,
            data,
            padding,
        } => {
            let mut bytes = header.to_vec();
            bytes.extend_from_slice(data);
            bytes.resize(bytes.len() + padding, 0);
            Out::ToClient { five_tuple, bytes }
        }
    }
}

impl Net {
    pub fn new() -> Self {
        Self::with(config(), Ports::default())
    }

    pub fn with(config: ServerConfig, ports: Ports) -> Self {
        let now = Instant::now();
        let users = users();
        let lookup = move |username: &str, realm: &str| -> Option<LongTermKey> {
            let password = users.get(username)?;
            long_term_key(username, realm, password).ok()
        };
        let policy = DefaultPeerPolicy {
            allow: vec!["127.0.0.0/8".parse::<Cidr>().unwrap()],
            deny: vec![],
            server_addresses: vec!["198.51.100.7".parse().unwrap()],
        };
        let server = Server::new(config, lookup, policy, ports.clone(), now);
        Net {
            server,
            now,
            server_addr: addr("198.51.100.7:3478"),
            ports,
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.server.handle_timeout(self.now);
    }

    /// Sends `bytes` from `client`; returns the forward (if any) and the responses.
    pub fn client_sends(&mut self, client: &Client, bytes: &[u8]) -> (Option<Out>, Vec<Vec<u8>>) {
        let f = self
            .server
            .handle_client(
                self.now,
                client.transport,
                client.addr,
                self.server_addr,
                bytes,
            )
            .map(owned);
        (f, self.drain(client))
    }

    /// Sends `bytes` from `client`; returns the forward and every transmit, whoever it is for.
    pub fn client_sends_any(
        &mut self,
        client: &Client,
        bytes: &[u8],
    ) -> (Option<Out>, Vec<iris_turn::Transmit>) {
        let f = self
            .server
            .handle_client(
                self.now,
                client.transport,
                client.addr,
                self.server_addr,
                bytes,
            )
            .map(owned);
        (
            f,
            std::iter::from_fn(|| self.server.poll_transmit()).collect(),
        )
    }

    pub fn drain(&mut self, client: &Client) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        while let Some(t) = self.server.poll_transmit() {
            assert_eq!(t.five_tuple.client, client.addr);
            v.push(t.contents);
        }
        v
    }

    pub fn peer_sends(
        &mut self,
        relayed: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
    ) -> Option<Out> {
        self.server
            .handle_peer(self.now, relayed, peer, data)
            .map(owned)
    }

    /// One request/response; handles 401/438 challenges by retrying with the new nonce.
    pub fn transact(
        &mut self,
        client: &mut Client,
        method: Method,
        attrs: &[Attribute<'_>],
    ) -> Response {
        for _ in 0..3 {
            let req = client.request(method, attrs);
            let (_, mut out) = self.client_sends(client, &req);
            assert_eq!(out.len(), 1, "one response expected");
            let resp = Response(out.pop().unwrap());
            let code = resp.error_code();
            if (code == Some(401) && client.nonce.is_none()) || code == Some(438) {
                let m = resp.message();
                client.realm = m.realm().unwrap().map(str::to_owned);
                client.nonce = m.nonce().unwrap().map(str::to_owned);
                continue;
            }
            return resp;
        }
        panic!("no answer after challenges");
    }
}

pub struct Response(pub Vec<u8>);

impl Response {
    pub fn message(&self) -> Message<'_> {
        Message::parse(&self.0).unwrap()
    }

    pub fn error_code(&self) -> Option<u16> {
        self.message().error_code().unwrap().map(|e| e.code)
    }

    pub fn is_success(&self) -> bool {
        self.message().class() == Class::Success
    }
}

pub struct Client {
    pub addr: SocketAddr,
    pub transport: Transport,
    pub username: String,
    pub password: String,
    pub realm: Option<String>,
    pub nonce: Option<String>,
    pub counter: u32,
}

impl Client {
    pub fn new(addr: &str, username: &str, password: &str) -> Self {
        Client {
            addr: self::addr(addr),
            transport: Transport::Udp,
            username: username.to_owned(),
            password: password.to_owned(),
            realm: None,
            nonce: None,
            counter: 0,
        }
    }

    pub fn tid(&mut self) -> TransactionId {
        self.counter += 1;
        let mut t = [0u8; 12];
        t[..4].copy_from_slice(&self.counter.to_be_bytes());
        t[4] = self.addr.port() as u8;
        TransactionId(t)
    }

    pub fn request(&mut self, method: Method, attrs: &[Attribute<'_>]) -> Vec<u8> {
        let tid = self.tid();
        self.request_with(tid, method, attrs)
    }

    pub fn request_with(
        &mut self,
        tid: TransactionId,
        method: Method,
        attrs: &[Attribute<'_>],
    ) -> Vec<u8> {
        let mut b = MessageBuilder::new(Class::Request, method, tid);
        for a in attrs {
            b.add(a);
        }
        if let (Some(realm), Some(nonce)) = (&self.realm, &self.nonce) {
            b.add(&Attribute::Username(&self.username));
            b.add(&Attribute::Realm(realm));
            b.add(&Attribute::Nonce(nonce));
            let key = long_term_key(&self.username, realm, &self.password).unwrap();
            b.add_message_integrity(&key);
        }
        b.finish().unwrap()
    }

    pub fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) -> Vec<u8> {
        let tid = self.tid();
        let mut b = MessageBuilder::new(Class::Indication, Method::SEND, tid);
        b.add(&Attribute::XorPeerAddress(peer));
        b.add(&Attribute::Data(data));
        b.finish().unwrap()
    }
}

pub const UDP: Attribute<'static> = Attribute::RequestedTransport(17);

/// Allocates for `client`; returns the relayed address.
pub fn allocate(net: &mut Net, client: &mut Client) -> SocketAddr {
    let r = net.transact(client, Method::ALLOCATE, &[UDP]);
    assert!(r.is_success(), "allocate failed: {:?}", r.error_code());
    r.message().xor_relayed_address().unwrap().unwrap()
}

pub fn permit(net: &mut Net, client: &mut Client, peer: SocketAddr) -> Response {
    net.transact(
        client,
        Method::CREATE_PERMISSION,
        &[Attribute::XorPeerAddress(peer)],
    )
}

pub fn bind(net: &mut Net, client: &mut Client, channel: u16, peer: SocketAddr) -> Response {
    net.transact(
        client,
        Method::CHANNEL_BIND,
        &[
            Attribute::ChannelNumber(channel),
            Attribute::XorPeerAddress(peer),
        ],
    )
}
