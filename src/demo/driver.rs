//! The tokio I/O driver around one sans-IO `turn_server_proto` [`TurnServer`].
//!
//! All protocol work (STUN Binding, TURN auth, allocations, permissions, channels, RFC 6062
//! stream framing) happens inside `turn-server-proto`; this module only moves bytes between
//! sockets and the server, keeps its timer, and binds the relay sockets it asks for.
//!
//! One driver task owns one `TurnServer`. Every socket has a small reader task that turns what it
//! reads into an [`Input`] on the driver's channel, so the driver itself only waits on that
//! channel and on the server's next deadline.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use turn_server_proto::api::{
    SocketAllocateError, TcpConnectError, TurnServerApi, TurnServerPollRet,
};
use turn_server_proto::server::TurnServer;
use turn_server_proto::stun::agent::Transmit;
use turn_server_proto::types::{AddressFamily, Instant, TransportType};

/// Largest datagram we read: a UDP payload cannot be larger.
const MAX_DATAGRAM: usize = 65_536;
/// Read buffer for one stream (TCP or TLS) connection.
const STREAM_READ_BUF: usize = 16 * 1024;
/// Queued outbound messages per stream client before we give up on it as too slow.
const STREAM_QUEUE: usize = 256;
/// Capacity of the driver's input channel; readers wait (back-pressure) when it is full.
const INPUT_QUEUE: usize = 1024;
/// Upper bound on poll/poll_transmit rounds after one input, so a misbehaving state machine
/// cannot spin the driver forever.
const MAX_DRIVE_ROUNDS: usize = 64;

/// A task handle that aborts its task when dropped, so nothing outlives its owner.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Something that happened on a socket, for the driver to feed to the server.
#[derive(Debug)]
pub(crate) enum Input {
    /// A datagram arrived on the UDP listening socket.
    Datagram { from: SocketAddr, data: Vec<u8> },
    /// A datagram from a peer arrived on the relay socket `relay` (RFC 8656 §11).
    Relayed {
        relay: SocketAddr,
        from: SocketAddr,
        data: Vec<u8>,
    },
    /// A stream client (TCP, or TLS after its handshake) connected; `writer` reaches it.
    StreamOpened {
        client: SocketAddr,
        writer: mpsc::Sender<Vec<u8>>,
    },
    /// Bytes arrived from a stream client (any framing: the server reassembles).
    StreamData { client: SocketAddr, data: Vec<u8> },
    /// A stream client went away (EOF, error or TLS failure after the handshake).
    StreamClosed { client: SocketAddr },
}

/// The server's clock: `turn_types::Instant` counts nanoseconds from the driver's start.
#[derive(Debug, Clone, Copy)]
struct Clock {
    base: std::time::Instant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            base: std::time::Instant::now(),
        }
    }

    fn now(&self) -> Instant {
        let nanos = i64::try_from(self.base.elapsed().as_nanos()).unwrap_or(i64::MAX);
        Instant::from_nanos(nanos)
    }

    fn to_tokio(self, at: Instant) -> tokio::time::Instant {
        let nanos = u64::try_from(at.as_nanos()).unwrap_or(0);
        tokio::time::Instant::from_std(self.base + Duration::from_nanos(nanos))
    }
}

/// One relay socket bound for an allocation, and the task that reads peers' datagrams from it.
#[derive(Debug)]
struct Relay {
    socket: Arc<UdpSocket>,
    _reader: AbortOnDrop,
}

/// How the server's listening address reaches its clients.
#[derive(Debug)]
enum Listener {
    /// A UDP listening socket: replies are datagrams sent from it.
    Udp(Arc<UdpSocket>),
    /// A stream listener (TCP or TLS): replies go down the client's own connection.
    Stream(HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>),
}

/// The driver: owns the server, the relay sockets and the stream clients' writers.
#[derive(Debug)]
pub(crate) struct Driver {
    server: TurnServer,
    listen: SocketAddr,
    listener: Listener,
    relays: HashMap<SocketAddr, Relay>,
    inputs_tx: mpsc::Sender<Input>,
    inputs_rx: mpsc::Receiver<Input>,
    clock: Clock,
    /// The client whose input is being processed. Used to route replies that
    /// turn-server-proto 0.7.3 addresses to its own listening address (see [`Driver::route`]).
    current_client: Option<SocketAddr>,
}

impl Driver {
    /// A driver for `server`; `udp` is the listening socket when the server is a UDP one.
    pub(crate) fn new(server: TurnServer, udp: Option<Arc<UdpSocket>>) -> Self {
        let (inputs_tx, inputs_rx) = mpsc::channel(INPUT_QUEUE);
        let listen = server.listen_address();
        let listener = match udp {
            Some(socket) => Listener::Udp(socket),
            None => Listener::Stream(HashMap::new()),
        };
        Driver {
            server,
            listen,
            listener,
            relays: HashMap::new(),
            inputs_tx,
            inputs_rx,
            clock: Clock::new(),
            current_client: None,
        }
    }

    /// A sender for the socket tasks that feed this driver.
    pub(crate) fn inputs(&self) -> mpsc::Sender<Input> {
        self.inputs_tx.clone()
    }

    /// Run until the task is aborted: wait for input or the server's next deadline, then let
    /// the server make progress.
    pub(crate) async fn run(mut self) {
        let mut wake = self.drive().await;
        loop {
            let deadline = self.clock.to_tokio(wake);
            tokio::select! {
                input = self.inputs_rx.recv() => match input {
                    // cannot happen while we hold `inputs_tx`, but end cleanly if it does
                    None => return,
                    Some(input) => self.handle_input(input),
                },
                () = tokio::time::sleep_until(deadline) => {}
            }
            wake = self.drive().await;
            self.current_client = None;
        }
    }

    fn handle_input(&mut self, input: Input) {
        let now = self.clock.now();
        match input {
            Input::Datagram { from, data } => {
                self.current_client = Some(from);
                let transmit = Transmit::new(&data[..], TransportType::Udp, from, self.listen);
                if let Some(reply) = self.server.recv(transmit, now) {
                    self.route(reply.build());
                }
            }
            Input::Relayed { relay, from, data } => {
                let transmit = Transmit::new(&data[..], TransportType::Udp, from, relay);
                if let Some(reply) = self.server.recv(transmit, now) {
                    self.route(reply.build());
                }
            }
            Input::StreamOpened { client, writer } => {
                if let Listener::Stream(clients) = &mut self.listener {
                    clients.insert(client, writer);
                }
            }
            Input::StreamData { client, data } => {
                if data.is_empty() {
                    return; // an empty transmit means "closed" to the server
                }
                self.current_client = Some(client);
                let transmit = Transmit::new(&data[..], TransportType::Tcp, client, self.listen);
                if let Some(reply) = self.server.recv(transmit, now) {
                    self.route(reply.build());
                }
            }
            Input::StreamClosed { client } => self.close_stream_client(client, now),
        }
    }

    /// Forget a stream client and tell the server its connection is gone.
    fn close_stream_client(&mut self, client: SocketAddr, now: Instant) {
        if let Listener::Stream(clients) = &mut self.listener {
            clients.remove(&client);
        }
        // turn-server-proto reads an empty TCP transmit as the connection closing.
        let closed = Transmit::new(&[][..], TransportType::Tcp, client, self.listen);
        if let Some(reply) = self.server.recv(closed, now) {
            self.route(reply.build());
        }
    }

    /// Let the server act until it only wants to wait: answer its requests (relay sockets,
    /// closes) and send everything it has queued. Returns when to call it again.
    async fn drive(&mut self) -> Instant {
        let mut wake = self.clock.now();
        for _ in 0..MAX_DRIVE_ROUNDS {
            let now = self.clock.now();
            let mut progressed = false;
            while let Some(transmit) = self.server.poll_transmit(now) {
                self.route(transmit);
                progressed = true;
            }
            loop {
                let now = self.clock.now();
                match self.server.poll(now) {
                    TurnServerPollRet::WaitUntil(at) => {
                        wake = at;
                        break;
                    }
                    other => {
                        self.handle_poll(other, now).await;
                        progressed = true;
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        wake
    }

    async fn handle_poll(&mut self, ret: TurnServerPollRet, now: Instant) {
        match ret {
            TurnServerPollRet::WaitUntil(_) => {}
            TurnServerPollRet::AllocateSocket {
                transport,
                listen_addr,
                client_addr,
                allocation_transport,
                family,
            } => {
                let result = self.allocate_relay(allocation_transport, family).await;
                self.server.allocated_socket(
                    transport,
                    listen_addr,
                    client_addr,
                    allocation_transport,
                    family,
                    result,
                    self.clock.now(),
                );
            }
            TurnServerPollRet::TcpConnect {
                relayed_addr,
                peer_addr,
                listen_addr,
                client_addr,
            } => {
                // TCP allocations (RFC 6062 Connect) are out of scope for the demo; we never
                // grant one, so this is only a safety net.
                self.server.tcp_connected(
                    relayed_addr,
                    peer_addr,
                    listen_addr,
                    client_addr,
                    Err(TcpConnectError::Forbidden),
                    now,
                );
            }
            TurnServerPollRet::TcpClose {
                local_addr,
                remote_addr,
            } => {
                if local_addr == self.listen {
                    if let Listener::Stream(clients) = &mut self.listener {
                        // dropping the writer ends the connection task, which closes the socket
                        clients.remove(&remote_addr);
                    }
                }
            }
            TurnServerPollRet::SocketClose {
                transport: _,
                listen_addr,
            } => {
                // dropping the relay aborts its reader and closes the socket
                self.relays.remove(&listen_addr);
            }
        }
    }

    /// Bind a UDP relay socket on the listening IP, port 0, and start reading it.
    async fn allocate_relay(
        &mut self,
        allocation_transport: TransportType,
        family: AddressFamily,
    ) -> Result<SocketAddr, SocketAllocateError> {
        if allocation_transport != TransportType::Udp {
            // RFC 6062 TCP relays are out of scope; 508 Insufficient Capacity is the closest
            // error turn-server-proto lets us report.
            return Err(SocketAllocateError::InsufficientCapacity);
        }
        let ip: IpAddr = self.listen.ip();
        let family_ok = match family {
            AddressFamily::IPV4 => ip.is_ipv4(),
            AddressFamily::IPV6 => ip.is_ipv6(),
        };
        if !family_ok {
            return Err(SocketAllocateError::AddressFamilyNotSupported);
        }
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|_| SocketAllocateError::InsufficientCapacity)?;
        let addr = socket
            .local_addr()
            .map_err(|_| SocketAllocateError::InsufficientCapacity)?;
        let socket = Arc::new(socket);
        let reader = tokio::spawn(read_relay(socket.clone(), addr, self.inputs()));
        self.relays.insert(
            addr,
            Relay {
                socket,
                _reader: AbortOnDrop(reader),
            },
        );
        Ok(addr)
    }

    /// Send one transmit from the server: from the listening address to a client, or from a
    /// relay address to a peer. Sends never wait: a full UDP buffer drops the datagram (as the
    /// network would), a stream client too slow to keep up is disconnected.
    fn route(&mut self, mut transmit: Transmit<Vec<u8>>) {
        if transmit.from == self.listen {
            if transmit.to == self.listen {
                // turn-server-proto 0.7.3 addresses Binding success responses to its own
                // listening address (`handle_stun_binding` sends to `transmit.to`). The reply
                // belongs to the client whose request we are processing.
                match self.current_client {
                    Some(client) => transmit.to = client,
                    None => return,
                }
            }
            match &mut self.listener {
                Listener::Udp(socket) => {
                    let _ = socket.try_send_to(&transmit.data, transmit.to);
                }
                Listener::Stream(clients) => {
                    let Some(writer) = clients.get(&transmit.to) else {
                        return;
                    };
                    // ...and does not pad the ChannelData it sends on streams either.
                    pad_channel_data(&mut transmit.data);
                    if writer.try_send(transmit.data).is_err() {
                        let client = transmit.to;
                        let now = self.clock.now();
                        self.close_stream_client(client, now);
                    }
                }
            }
        } else if let Some(relay) = self.relays.get(&transmit.from) {
            let _ = relay.socket.try_send_to(&transmit.data, transmit.to);
        }
    }
}

/// Read datagrams from the UDP listening socket into the driver.
pub(crate) async fn read_udp_listener(socket: Arc<UdpSocket>, inputs: mpsc::Sender<Input>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        // ICMP errors (e.g. port unreachable from a vanished client) surface as recv errors
        // on some platforms: skip them rather than stopping the listener.
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let data = buf[..n].to_vec();
        if inputs.send(Input::Datagram { from, data }).await.is_err() {
            return;
        }
    }
}

/// Read peers' datagrams from one relay socket into the driver.
async fn read_relay(socket: Arc<UdpSocket>, relay: SocketAddr, inputs: mpsc::Sender<Input>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let data = buf[..n].to_vec();
        let input = Input::Relayed { relay, from, data };
        if inputs.send(input).await.is_err() {
            return;
        }
    }
}

/// Serve one stream connection (plain TCP, or TLS after the handshake): its bytes go to the
/// driver, the driver's replies for `client` come back through the writer channel.
pub(crate) async fn serve_stream<S>(stream: S, client: SocketAddr, inputs: mpsc::Sender<Input>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (writer, mut replies) = mpsc::channel(STREAM_QUEUE);
    if inputs
        .send(Input::StreamOpened { client, writer })
        .await
        .is_err()
    {
        return;
    }
    let (mut read, mut write) = tokio::io::split(stream);
    let mut buf = vec![0u8; STREAM_READ_BUF];
    // turn-server-proto 0.7.3 does not skip the padding that RFC 8656 §12.5 requires after
    // ChannelData on streams, so the stream is framed here and each message handed over
    // without it.
    let mut framer = rtc::shared::turn_framing::TurnStreamDecoder::new();
    'conn: loop {
        tokio::select! {
            n = read.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    framer.extend_from_slice(&buf[..n]);
                    loop {
                        match framer.next_message() {
                            Ok(Some(mut data)) => {
                                strip_channel_padding(&mut data);
                                if inputs.send(Input::StreamData { client, data }).await.is_err() {
                                    return;
                                }
                            }
                            Ok(None) => break,
                            // Not TURN: the stream cannot be resynchronised.
                            Err(_) => break 'conn,
                        }
                    }
                }
            },
            reply = replies.recv() => match reply {
                // the driver dropped our writer: it closed this connection
                None => break,
                Some(bytes) => {
                    if write.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = write.shutdown().await;
    let _ = inputs.send(Input::StreamClosed { client }).await;
}

/// Pad a ChannelData message to a multiple of 4 bytes, as streams require (RFC 8656 §12.5).
fn pad_channel_data(msg: &mut Vec<u8>) {
    if msg.len() >= 4 && msg[0] >> 6 == 0b01 {
        msg.resize(msg.len().next_multiple_of(4), 0);
    }
}

/// Trim a ChannelData message (first two bits 01) to its declared length.
fn strip_channel_padding(msg: &mut Vec<u8>) {
    if msg.len() >= 4 && msg[0] >> 6 == 0b01 {
        let len = 4 + usize::from(u16::from_be_bytes([msg[2], msg[3]]));
        msg.truncate(len);
    }
}
