//! Loopback tests of the demo server with independent clients: rtc-stun for Binding, the
//! rtc-turn sans-IO client for Allocate / CreatePermission / Send, tokio-rustls for TLS.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rtc::sansio::Protocol;
use rtc::shared::turn_framing::TurnStreamDecoder;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::stun::message::{Getter, Message, TransactionId, BINDING_REQUEST, CLASS_SUCCESS_RESPONSE};
use rtc::stun::xoraddr::XorMappedAddress;
use rtc::turn::client::{Client, ClientConfig, Event};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use turn_server_proto::api::TurnServerApi;
use turn_server_proto::server::TurnServer;
use turn_server_proto::stun::agent::Transmit;
use turn_server_proto::types::{Instant, TransportType};

use super::DemoServer;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Every test finishes well within this, or fails instead of hanging.
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, fut)
        .await
        .expect("test timed out")
}

/// Run `test` against a fresh demo server on loopback, within [`TEST_TIMEOUT`], and stop the
/// server afterwards.
async fn with_server(test: impl AsyncFnOnce(&DemoServer)) {
    within(async {
        let server = DemoServer::start(LOOPBACK).await.expect("start");
        test(&server).await;
        server.shutdown().await;
    })
    .await;
}

/// A Binding request and its transaction id.
fn binding_request() -> (Vec<u8>, TransactionId) {
    let tid = TransactionId::new();
    let mut msg = Message::new();
    msg.build(&[Box::new(tid), Box::new(BINDING_REQUEST)])
        .expect("build Binding request");
    (msg.raw.clone(), tid)
}

/// Decode a Binding success response for `tid` and return its XOR-MAPPED-ADDRESS.
fn mapped_address(reply: &[u8], tid: TransactionId) -> SocketAddr {
    let mut msg = Message::new();
    msg.raw = reply.to_vec();
    msg.decode().expect("decode Binding response");
    assert_eq!(msg.transaction_id, tid);
    assert_eq!(msg.typ.class, CLASS_SUCCESS_RESPONSE, "{msg}");
    let mut xor = XorMappedAddress::default();
    xor.get_from(&msg).expect("XOR-MAPPED-ADDRESS");
    SocketAddr::new(xor.ip, xor.port)
}

/// Read one STUN message (20-byte header + length) from a stream.
async fn read_stun<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut msg = vec![0u8; 20];
    stream.read_exact(&mut msg).await.expect("STUN header");
    let len = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    msg.resize(20 + len, 0);
    stream.read_exact(&mut msg[20..]).await.expect("STUN body");
    msg
}

async fn binding_over_stream<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> SocketAddr {
    let (request, tid) = binding_request();
    stream.write_all(&request).await.expect("send Binding");
    let reply = read_stun(stream).await;
    mapped_address(&reply, tid)
}

fn tls_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn stun_binding_over_udp_reports_our_address() {
    with_server(async |server| {
        let socket = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
        let (request, tid) = binding_request();
        socket.send_to(&request, server.udp).await.expect("send");
        let mut buf = vec![0u8; 1500];
        let (n, from) = socket.recv_from(&mut buf).await.expect("recv");
        assert_eq!(from, server.udp);
        assert_eq!(
            mapped_address(&buf[..n], tid),
            socket.local_addr().expect("addr")
        );
    })
    .await;
}

#[tokio::test]
async fn stun_binding_over_tcp_reports_our_address() {
    with_server(async |server| {
        let mut stream = TcpStream::connect(server.tcp).await.expect("connect");
        let ours = stream.local_addr().expect("addr");
        assert_eq!(binding_over_stream(&mut stream).await, ours);
        // a second request on the same connection is answered too
        assert_eq!(binding_over_stream(&mut stream).await, ours);
    })
    .await;
}

#[tokio::test]
async fn stun_binding_over_tls_verifies_with_the_demo_ca() {
    with_server(async |server| {
        let connector = tls_connector(&server.ca_pem);
        for name in [
            rustls::pki_types::ServerName::from(LOOPBACK),
            rustls::pki_types::ServerName::try_from("localhost").expect("name"),
        ] {
            let tcp = TcpStream::connect(server.tls).await.expect("connect");
            let ours = tcp.local_addr().expect("addr");
            let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
            assert_eq!(binding_over_stream(&mut tls).await, ours);
        }
    })
    .await;
}

#[tokio::test]
async fn tls_with_a_wrong_name_is_rejected() {
    with_server(async |server| {
        let connector = tls_connector(&server.ca_pem);
        let tcp = TcpStream::connect(server.tls).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("example.com").expect("name");
        assert!(connector.connect(name, tcp).await.is_err());
    })
    .await;
}

/// A byte stream to the server: plain TCP or TLS.
trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for S {}

/// Which listener a TURN test reaches the server on.
#[derive(Clone, Copy)]
enum Via {
    Udp,
    Tcp,
    Tls,
}

/// The client side of a TURN test: the rtc-turn client and its socket or stream.
enum Io {
    Udp(UdpSocket),
    /// A stream, the server's address, and the splitter for RFC 8656 §12.5 framing.
    Stream(Box<dyn ByteStream>, SocketAddr, TurnStreamDecoder),
}

struct TurnTest {
    client: Client,
    io: Io,
    local: SocketAddr,
}

impl TurnTest {
    async fn new(server: &DemoServer, via: Via, password: &str) -> Self {
        let (io, local, server_addr, transport) = match via {
            Via::Udp => {
                let socket = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
                let local = socket.local_addr().expect("addr");
                (Io::Udp(socket), local, server.udp, TransportProtocol::UDP)
            }
            Via::Tcp => {
                let stream = TcpStream::connect(server.tcp).await.expect("connect");
                let local = stream.local_addr().expect("addr");
                let io = Io::Stream(Box::new(stream), server.tcp, TurnStreamDecoder::new());
                (io, local, server.tcp, TransportProtocol::TCP)
            }
            Via::Tls => {
                let tcp = TcpStream::connect(server.tls).await.expect("connect");
                let local = tcp.local_addr().expect("addr");
                let tls = tls_connector(&server.ca_pem)
                    .connect(rustls::pki_types::ServerName::from(LOOPBACK), tcp)
                    .await
                    .expect("TLS handshake");
                let io = Io::Stream(Box::new(tls), server.tls, TurnStreamDecoder::new());
                (io, local, server.tls, TransportProtocol::TCP)
            }
        };
        let config = ClientConfig {
            stun_serv_addr: String::new(),
            turn_serv_addr: server_addr.to_string(),
            local_addr: local,
            transport_protocol: transport,
            username: server.username.clone(),
            password: password.to_owned(),
            realm: String::new(),
            software: String::new(),
            rto_in_ms: 0,
            allocation_refresh_interval_cap: None,
        };
        let provider = rtc::crypto::default_provider().expect("crypto provider");
        let client = Client::new(config, provider).expect("TURN client");
        TurnTest { client, io, local }
    }

    fn feed(&mut self, from: SocketAddr, data: &[u8]) {
        let protocol = match self.io {
            Io::Udp(_) => TransportProtocol::UDP,
            Io::Stream(..) => TransportProtocol::TCP,
        };
        let msg = TaggedBytesMut {
            now: std::time::Instant::now(),
            transport: TransportContext {
                local_addr: self.local,
                peer_addr: from,
                transport_protocol: protocol,
                ecn: None,
            },
            message: BytesMut::from(data),
        };
        // a message the client cannot use is not a test failure by itself
        let _ = self.client.handle_read(msg);
    }

    /// Send what the client wants sent, then wait for its next event.
    async fn next_event(&mut self) -> Event {
        let mut buf = vec![0u8; 65_536];
        loop {
            while let Some(out) = self.client.poll_write() {
                match &mut self.io {
                    Io::Udp(socket) => {
                        socket
                            .send_to(&out.message, out.transport.peer_addr)
                            .await
                            .expect("send");
                    }
                    Io::Stream(stream, ..) => stream.write_all(&out.message).await.expect("write"),
                }
            }
            if let Some(event) = self.client.poll_event() {
                return event;
            }
            let wake = self
                .client
                .poll_timeout()
                .unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(1));
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(wake));
            match &mut self.io {
                Io::Udp(socket) => tokio::select! {
                    r = socket.recv_from(&mut buf) => {
                        let (n, from) = r.expect("recv");
                        let data = buf[..n].to_vec();
                        self.feed(from, &data);
                    }
                    () = sleep => {
                        let _ = self.client.handle_timeout(std::time::Instant::now());
                    }
                },
                Io::Stream(stream, from, decoder) => tokio::select! {
                    r = stream.read(&mut buf) => {
                        let n = r.expect("read");
                        assert!(n > 0, "server closed the connection");
                        let from = *from;
                        decoder.extend_from_slice(&buf[..n]);
                        let mut messages = Vec::new();
                        while let Some(m) = decoder.next_message().expect("TURN framing") {
                            messages.push(m);
                        }
                        for m in messages {
                            self.feed(from, &m);
                        }
                    }
                    () = sleep => {
                        let _ = self.client.handle_timeout(std::time::Instant::now());
                    }
                },
            }
        }
    }

    async fn allocate(&mut self) -> SocketAddr {
        self.client
            .allocate(std::time::Instant::now())
            .expect("allocate");
        match self.next_event().await {
            Event::AllocateResponse(_, relayed) => relayed,
            other => panic!("expected an allocation, got {other:?}"),
        }
    }

    /// CreatePermission for `peer`, relay one datagram to it and one back.
    async fn relay_round_trip(&mut self, relayed: SocketAddr, peer: &UdpSocket) {
        let peer_addr = peer.local_addr().expect("peer addr");
        let now = std::time::Instant::now();
        let tid = self
            .client
            .relay(relayed)
            .expect("relay")
            .create_permission(now, peer_addr)
            .expect("create permission");
        assert!(tid.is_some());
        match self.next_event().await {
            Event::CreatePermissionResponse(_, addr) => assert_eq!(addr, peer_addr),
            other => panic!("expected a permission, got {other:?}"),
        }

        self.client
            .relay(relayed)
            .expect("relay")
            .send_to(std::time::Instant::now(), b"hello peer", peer_addr)
            .expect("send_to");
        while let Some(out) = self.client.poll_write() {
            match &mut self.io {
                Io::Udp(socket) => {
                    socket
                        .send_to(&out.message, out.transport.peer_addr)
                        .await
                        .expect("send");
                }
                Io::Stream(stream, ..) => stream.write_all(&out.message).await.expect("write"),
            }
        }
        let mut buf = vec![0u8; 1500];
        let (n, from) = peer.recv_from(&mut buf).await.expect("peer recv");
        assert_eq!(&buf[..n], b"hello peer");
        assert_eq!(from, relayed, "the peer sees the relayed address");

        peer.send_to(b"hello client", relayed)
            .await
            .expect("peer send");
        // the ChannelBind the client starts on its first send_to has no event of its own, so
        // the next event must be the data
        match self.next_event().await {
            Event::DataIndicationOrChannelData(_, from, data) => {
                assert_eq!(from, peer_addr);
                assert_eq!(&data[..], b"hello client");
            }
            other => panic!("expected relayed data, got {other:?}"),
        }
    }
}

/// Allocate over `via`, then permission and a data round trip to a peer through the relay.
async fn allocate_and_relay(via: Via) {
    with_server(async |server| {
        let mut turn = TurnTest::new(server, via, server.password.expose()).await;
        let relayed = turn.allocate().await;
        assert_eq!(relayed.ip(), LOOPBACK);
        assert_ne!(relayed, server.udp);
        let peer = UdpSocket::bind((LOOPBACK, 0)).await.expect("peer");
        turn.relay_round_trip(relayed, &peer).await;
    })
    .await;
}

#[tokio::test]
async fn turn_allocate_permission_and_relay_over_udp() {
    allocate_and_relay(Via::Udp).await;
}

#[tokio::test]
async fn turn_allocate_permission_and_relay_over_tcp() {
    allocate_and_relay(Via::Tcp).await;
}

#[tokio::test]
async fn turn_allocate_permission_and_relay_over_tls() {
    allocate_and_relay(Via::Tls).await;
}

#[tokio::test]
async fn hostile_input_does_not_stop_the_server() {
    with_server(async |server| {
        let (binding, _) = binding_request();
        let mut lying_length = binding.clone();
        lying_length[2..4].copy_from_slice(&0xfffc_u16.to_be_bytes());
        let garbage: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xff; 3],
            binding[..19].to_vec(),
            lying_length,
            vec![0x40, 0x00, 0xff, 0xff, 1, 2, 3, 4], // ChannelData, unbound, short
            (0..=255).collect(),
        ];

        let socket = UdpSocket::bind((LOOPBACK, 0)).await.expect("bind");
        for junk in &garbage {
            socket.send_to(junk, server.udp).await.expect("send");
        }
        for junk in &garbage {
            let mut tcp = TcpStream::connect(server.tcp).await.expect("connect");
            tcp.write_all(junk).await.expect("write");
            drop(tcp);
            let mut tls = TcpStream::connect(server.tls).await.expect("connect");
            tls.write_all(junk).await.expect("write");
        }

        // every listener still answers
        let (request, tid) = binding_request();
        socket.send_to(&request, server.udp).await.expect("send");
        let mut buf = vec![0u8; 1500];
        loop {
            let (n, _) = socket.recv_from(&mut buf).await.expect("recv");
            let mut msg = Message::new();
            msg.raw = buf[..n].to_vec();
            if msg.decode().is_ok() && msg.transaction_id == tid {
                break;
            }
        }
        let mut tcp = TcpStream::connect(server.tcp).await.expect("connect");
        let ours = tcp.local_addr().expect("addr");
        assert_eq!(binding_over_stream(&mut tcp).await, ours);
        let tcp = TcpStream::connect(server.tls).await.expect("connect");
        let ours = tcp.local_addr().expect("addr");
        let mut tls = tls_connector(&server.ca_pem)
            .connect(rustls::pki_types::ServerName::from(LOOPBACK), tcp)
            .await
            .expect("TLS handshake");
        assert_eq!(binding_over_stream(&mut tls).await, ours);
    })
    .await;
}

#[tokio::test]
async fn turn_allocate_with_a_wrong_password_fails() {
    with_server(async |server| {
        let mut turn = TurnTest::new(server, Via::Udp, "not-the-password").await;
        turn.client
            .allocate(std::time::Instant::now())
            .expect("allocate");
        match turn.next_event().await {
            Event::AllocateError(_, err) => assert!(err.to_string().contains("401"), "{err}"),
            other => panic!("expected a 401, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_the_listeners() {
    within(async {
        let server = DemoServer::start(LOOPBACK).await.expect("start");
        let (tcp, tls) = (server.tcp, server.tls);
        server.shutdown().await;
        assert!(TcpStream::connect(tcp).await.is_err());
        assert!(TcpStream::connect(tls).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn drop_stops_the_server() {
    within(async {
        let server = DemoServer::start(LOOPBACK).await.expect("start");
        let tcp = server.tcp;
        drop(server);
        // aborted tasks are dropped by the runtime shortly after; give it a moment
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(tcp).await.is_err());
    })
    .await;
}

/// Pins the upstream quirk `Driver::route` works around: turn-server-proto 0.7.3 addresses a
/// Binding success response to its own listening address instead of the client's. If this
/// starts failing after an upgrade, the quirk is fixed and the workaround can go.
#[test]
fn upstream_binding_reply_is_addressed_to_the_listener() {
    let listen: SocketAddr = "127.0.0.1:3478".parse().expect("addr");
    let client: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    let mut server = TurnServer::new(TransportType::Udp, listen, "r".to_owned());
    let (request, tid) = binding_request();
    let reply = server
        .recv(
            Transmit::new(&request[..], TransportType::Udp, client, listen),
            Instant::ZERO,
        )
        .expect("a Binding response")
        .build();
    assert_eq!(reply.from, listen);
    assert_eq!(
        reply.to, listen,
        "upstream now addresses the client: drop the workaround"
    );
    assert_eq!(mapped_address(&reply.data, tid), client);
}
