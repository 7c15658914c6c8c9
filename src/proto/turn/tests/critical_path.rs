//! The round trips on a `check` row's critical path, counted on a virtual clock: a protocol
//! property, not a timing.
//!
//! Two [`TurnClient`]s (A carries the row, B is the echo peer, as in `check::probe`) talk to an
//! in-memory server that keeps one allocation per client and relays Send indications and
//! ChannelData between them. Every message between a client and the server takes the one-way
//! delay `owd`; data between the two relays takes `hop` (0 in the model: both relays live on
//! the server's host, so the hop is loopback-fast next to the client's path). The phases follow
//! `probe_row` step by step:
//!
//! | phase | what runs at once | round trips |
//! |---|---|---|
//! | allocate | Binding ∥ A: 401 + Allocate ∥ B: 401 + Allocate | 2 |
//! | permission | A: CreatePermission(B) ∥ A: ChannelBind(B) ∥ B: CreatePermission(A) | 1 |
//! | echo | A → relay A → relay B → B, B echoes → relay B → relay A → A (Send and ChannelData) | 2 + 2 hops |
//! | release | Refresh LIFETIME 0 on A ∥ on B | 1 |
//!
//! The echo is two round trips because the peer is a client of ours behind the same path: the
//! data crosses the client–server path four times. Total for TURN over UDP: 6 RTT (+ 2 hops);
//! TCP adds the connect (1 RTT: the first request rides with the handshake's last ACK), TLS 1.2
//! two more (TLS 1.3 one). A STUN-only row is the Binding: 1 RTT.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::IpAddr;

use super::*;

/// Where a message in flight goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum To {
    /// The server, from client `n`.
    Server(usize),
    /// Client `n`.
    Client(usize),
}

/// One allocation's server-side state.
#[derive(Default)]
struct Alloc {
    relay: Option<SocketAddr>,
    permissions: Vec<IpAddr>,
    channels: HashMap<u16, SocketAddr>,
}

/// The fake server of `tests.rs`, one per client (its own nonce and relayed address), plus a
/// relay between the allocations.
struct RelayServer {
    fakes: Vec<Fake>,
    allocs: Vec<Alloc>,
}

impl RelayServer {
    fn new(clients: usize) -> Self {
        let fakes = (0..clients)
            .map(|n| {
                let mut f = Fake::new("pw");
                f.relay = Some(SocketAddr::from(([198, 18, 0, 1], 49160 + n as u16)));
                f
            })
            .collect();
        RelayServer {
            fakes,
            allocs: (0..clients).map(|_| Alloc::default()).collect(),
        }
    }

    /// Handle `bytes` from client `from`: replies go back to it; relayed data goes to the
    /// client owning the peer's relayed address (`true` marks a relay hop).
    fn handle(&mut self, from: usize, bytes: &[u8]) -> Vec<(usize, bool, Vec<u8>)> {
        if (0x40..0x50).contains(&bytes[0]) {
            let mut cd = rtc::turn::proto::chandata::ChannelData {
                raw: bytes.to_vec(),
                ..Default::default()
            };
            cd.decode().unwrap();
            let peer = self.allocs[from].channels[&cd.number.0];
            return self.relay(from, peer, cd.data);
        }
        let d = stun::decode(bytes).unwrap();
        match (d.method, d.class) {
            (method::SEND, Some(Class::Indication)) => {
                self.relay(from, d.peer.unwrap(), d.data.unwrap())
            }
            (method::BINDING, Some(Class::Request)) => {
                let mapped: SocketAddr = CLIENT.parse().unwrap();
                vec![(
                    from,
                    false,
                    crate::proto::binding::tests::success(d.txid, mapped),
                )]
            }
            _ => {
                let reply = self.fakes[from].reply(bytes).unwrap();
                let ok = stun::decode(&reply).unwrap().class == Some(Class::Success);
                let alloc = &mut self.allocs[from];
                match d.method {
                    method::ALLOCATE if ok => alloc.relay = self.fakes[from].relay,
                    method::CREATE_PERMISSION if ok => alloc.permissions.push(d.peer.unwrap().ip()),
                    method::CHANNEL_BIND if ok => {
                        let mut m = Message::new();
                        m.raw = d.raw.clone();
                        m.decode().unwrap();
                        let mut ch = ChannelNumber::default();
                        rtc::stun::message::Getter::get_from(&mut ch, &m).unwrap();
                        let peer = d.peer.unwrap();
                        alloc.permissions.push(peer.ip());
                        alloc.channels.insert(ch.0, peer);
                    }
                    _ => {}
                }
                vec![(from, false, reply)]
            }
        }
    }

    /// Relay `data` from `from`'s allocation to `peer`, with RFC 8656 §11–12 permission checks;
    /// the receiver gets ChannelData if it bound a channel to the sender, else a Data indication.
    fn relay(&self, from: usize, peer: SocketAddr, data: Vec<u8>) -> Vec<(usize, bool, Vec<u8>)> {
        let src = self.allocs[from].relay.expect("sender is allocated");
        assert!(
            self.allocs[from].permissions.contains(&peer.ip()),
            "no permission on the sender's allocation for {peer}"
        );
        let Some(to) = self.allocs.iter().position(|a| a.relay == Some(peer)) else {
            panic!("no allocation owns {peer}");
        };
        let dst = &self.allocs[to];
        assert!(
            dst.permissions.contains(&src.ip()),
            "relay {peer} has no permission for {src}: data dropped"
        );
        let bytes = match dst.channels.iter().find(|(_, p)| **p == src) {
            Some((ch, _)) => {
                let mut cd = rtc::turn::proto::chandata::ChannelData {
                    data,
                    number: ChannelNumber(*ch),
                    raw: vec![],
                };
                cd.encode();
                cd.raw
            }
            None => {
                let mut m = stun::start(
                    rtc::stun::message::METHOD_DATA,
                    CLASS_INDICATION,
                    stun::new_txid(),
                );
                stun::add(
                    &mut m,
                    &PeerAddress {
                        ip: src.ip(),
                        port: src.port(),
                    },
                )
                .unwrap();
                stun::add(&mut m, &Data(data)).unwrap();
                stun::finish(m)
            }
        };
        vec![(to, true, bytes)]
    }
}

/// A message in flight: arrival time, send order (keeps FIFO among equal times), target, bytes.
type InFlight = (Instant, u64, To, Vec<u8>);

/// A virtual network: clients, the server, messages in flight ordered by arrival time.
struct Net {
    now: Instant,
    owd: Duration,
    hop: Duration,
    clients: Vec<TurnClient>,
    server: RelayServer,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
}

impl Net {
    fn new(clients: usize, owd: Duration, hop: Duration) -> Self {
        Net {
            now: Instant::now(),
            owd,
            hop,
            clients: (0..clients)
                .map(|_| client(Some("alice"), Some("pw")))
                .collect(),
            server: RelayServer::new(clients),
            in_flight: BinaryHeap::new(),
            seq: 0,
        }
    }

    fn send(&mut self, at: Instant, to: To, bytes: Vec<u8>) {
        self.seq += 1;
        self.in_flight.push(Reverse((at, self.seq, to, bytes)));
    }

    /// Run until `done` holds. `react` sees every event as it is reported (B's echo lives there).
    /// Returns the virtual time the phase took.
    fn phase(
        &mut self,
        mut react: impl FnMut(usize, &mut TurnClient, &TurnEvent),
        mut done: impl FnMut(usize, &TurnEvent) -> bool,
    ) -> Duration {
        let start = self.now;
        let mut finished = false;
        for _ in 0..10_000 {
            for n in 0..self.clients.len() {
                while let Some(ev) = self.clients[n].poll_event() {
                    assert!(
                        !matches!(ev, TurnEvent::Failed { .. }),
                        "client {n}: {ev:?}"
                    );
                    react(n, &mut self.clients[n], &ev);
                    finished |= done(n, &ev);
                }
                while let Some(b) = self.clients[n].poll_transmit() {
                    self.send(self.now + self.owd, To::Server(n), b);
                }
            }
            if finished {
                return self.now - start;
            }
            let timer = self.clients.iter().filter_map(|c| c.poll_timeout()).min();
            let next = self.in_flight.peek().map(|Reverse((at, ..))| *at);
            if next.is_some_and(|at| timer.is_none_or(|t| at <= t)) {
                let Reverse((at, _, to, bytes)) = self.in_flight.pop().unwrap();
                self.now = at;
                match to {
                    To::Client(n) => self.clients[n].handle_input(at, &bytes),
                    To::Server(from) => {
                        for (n, hop, out) in self.server.handle(from, &bytes) {
                            let delay = self.owd + if hop { self.hop } else { Duration::ZERO };
                            self.send(at + delay, To::Client(n), out);
                        }
                    }
                }
            } else if let Some(t) = timer {
                self.now = t;
                for c in &mut self.clients {
                    c.handle_timeout(t);
                }
            } else {
                panic!("stalled: nothing in flight, nothing pending");
            }
        }
        panic!("phase did not finish");
    }
}

/// The phases of one TURN row, as `probe_row` runs them; each phase's virtual duration.
fn turn_row(owd: Duration, hop: Duration) -> [Duration; 4] {
    const A: usize = 0;
    const B: usize = 1;
    let mut net = Net::new(2, owd, hop);
    let t = net.now;

    // Binding ∥ A: Allocate ∥ B: Allocate.
    net.clients[A].binding(t);
    net.clients[A].allocate(t);
    net.clients[B].allocate(t);
    let mut relayed = [None; 2];
    let mut bound = false;
    let allocate = net.phase(
        |_, _, _| {},
        |n, ev| {
            match ev {
                TurnEvent::Bound { .. } => bound = true,
                TurnEvent::Allocated { relayed: r, .. } => relayed[n] = Some(*r),
                _ => {}
            }
            bound && relayed.iter().all(Option::is_some)
        },
    );
    let (a_relay, b_relay) = (relayed[A].unwrap(), relayed[B].unwrap());
    assert_ne!(a_relay, b_relay);

    // A: CreatePermission(B) ∥ A: ChannelBind(B) ∥ B: CreatePermission(A).
    let t = net.now;
    net.clients[A].create_permission(t, b_relay);
    net.clients[A].channel_bind(t, b_relay, 0x4000);
    net.clients[B].create_permission(t, a_relay);
    let mut left = 3;
    let permission = net.phase(
        |_, _, _| {},
        |_, ev| {
            if matches!(
                ev,
                TurnEvent::PermissionCreated { .. } | TurnEvent::ChannelBound { .. }
            ) {
                left -= 1;
            }
            left == 0
        },
    );

    // Send indication ∥ ChannelData from A; B echoes each by Send indication.
    net.clients[A].send_indication(b_relay, b"by-send");
    net.clients[A].channel_data(0x4000, b"by-channel");
    let mut back = vec![];
    let echo = net.phase(
        |n, c, ev| {
            if let (B, TurnEvent::Data { peer, data, .. }) = (n, ev) {
                assert_eq!(*peer, Some(a_relay), "B learns the sender from the relay");
                c.send_indication(a_relay, data);
            }
        },
        |n, ev| {
            if let (A, TurnEvent::Data { data, .. }) = (n, ev) {
                back.push(data.clone());
            }
            back.len() == 2
        },
    );
    back.sort();
    assert_eq!(back, [b"by-channel".to_vec(), b"by-send".to_vec()]);

    // Refresh LIFETIME 0 on both.
    let t = net.now;
    net.clients[A].release(t);
    net.clients[B].release(t);
    let mut released = 0;
    let release = net.phase(
        |_, _, _| {},
        |_, ev| {
            released += matches!(ev, TurnEvent::Released { .. }) as u32;
            released == 2
        },
    );
    assert!(net.clients.iter().all(|c| !c.is_allocated()));
    [allocate, permission, echo, release]
}

const OWD: Duration = Duration::from_millis(25);
const RTT: Duration = Duration::from_millis(50);

#[test]
fn turn_udp_row_is_six_round_trips() {
    let phases = turn_row(OWD, Duration::ZERO);
    assert_eq!(
        phases,
        [RTT * 2, RTT, RTT * 2, RTT],
        "allocate, permission, echo, release"
    );
    assert_eq!(phases.iter().sum::<Duration>(), RTT * 6);
}

#[test]
fn the_relay_hop_is_counted_twice_and_only_in_the_echo() {
    let hop = Duration::from_millis(3);
    let phases = turn_row(OWD, hop);
    assert_eq!(phases, [RTT * 2, RTT, RTT * 2 + hop * 2, RTT]);
}

#[test]
fn stun_only_row_is_one_round_trip() {
    let mut net = Net::new(1, OWD, Duration::ZERO);
    let t = net.now;
    net.clients[0].binding(t);
    let took = net.phase(|_, _, _| {}, |_, ev| matches!(ev, TurnEvent::Bound { .. }));
    assert_eq!(took, RTT);
}

/// The whole row in round trips, transport set-up included, as `scripts/bench-check.sh`
/// prints it: TCP connect 1, TLS 1.2 handshake 2 (coturn 4.6.1's ceiling), TLS 1.3 1.
#[test]
fn row_minimum_per_transport() {
    let turn = turn_row(OWD, Duration::ZERO).iter().sum::<Duration>();
    let rtts = |setup: u32| (turn + RTT * setup).as_millis() / RTT.as_millis();
    assert_eq!(rtts(0), 6, "TURN/UDP");
    assert_eq!(rtts(1), 7, "TURN/TCP: + connect");
    assert_eq!(rtts(1 + 2), 9, "TURN/TLS 1.2: + connect + 2-RTT handshake");
    assert_eq!(rtts(1 + 1), 8, "TURN/TLS 1.3: + connect + 1-RTT handshake");
}
