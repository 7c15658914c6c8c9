//! The round trips on a `check` row's critical path, counted on a virtual clock by driving the
//! row's own machine ([`Row`]): a protocol property, not a timing.
//!
//! The row's two links (A carries the row, B is the echo peer) talk to an in-memory server that
//! keeps one allocation per link and relays Send indications and ChannelData between them.
//! Every message between a link and the server takes the one-way delay `owd`; data between the
//! two relays takes `hop` (0 in the model: both relays live on the server's host, so the hop
//! is loopback-fast next to the client's path). The phases the machine reports:
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
#![allow(clippy::disallowed_methods)] // an arbitrary t0 for the virtual clock

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rtc::stun::message::Message;
use rtc::turn::proto::channum::ChannelNumber;

use super::plan::RowInput;
use super::row::{Row, RowEvent, RowPhase, RowSettings};
use super::stages::blank;
use crate::model::check::{CheckRow, Stage};
use crate::model::{Outcome, Phase};
use crate::probe::explain::ErrorContext;
use crate::probe::Budget;
use crate::proto::stun::{self, method, Class};
use crate::proto::turn::peer_data_indication;
use crate::proto::turn::tests::{client, Fake, CLIENT};

/// One allocation's server-side state.
#[derive(Default)]
struct Alloc {
    relay: Option<SocketAddr>,
    permissions: Vec<IpAddr>,
    channels: HashMap<u16, SocketAddr>,
}

/// The fake TURN server of `proto/turn/tests.rs`, one per link (its own nonce and relayed
/// address), plus a relay between the allocations.
struct RelayServer {
    fakes: Vec<Fake>,
    allocs: Vec<Alloc>,
}

impl RelayServer {
    fn new(links: usize) -> Self {
        let fakes = (0..links)
            .map(|n| {
                let mut f = Fake::new("pw");
                f.relay = Some(SocketAddr::from(([198, 18, 0, 1], 49160 + n as u16)));
                f
            })
            .collect();
        RelayServer {
            fakes,
            allocs: (0..links).map(|_| Alloc::default()).collect(),
        }
    }

    /// Handle `bytes` from link `from`: replies go back to it; relayed data goes to the link
    /// owning the peer's relayed address (`true` marks a relay hop).
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
                let Some(reply) = self.fakes[from].reply(bytes) else {
                    return vec![];
                };
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
            None => peer_data_indication(rtc::stun::message::METHOD_DATA, src, &data).unwrap(),
        };
        vec![(to, true, bytes)]
    }
}

/// Where a message in flight goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum To {
    /// The server, from link `n`.
    Server(usize),
    /// The row, on link `n`.
    Row(usize),
}

/// A message in flight: arrival time, send order (keeps FIFO among equal times), target, bytes.
type InFlight = (Instant, u64, To, Vec<u8>);

/// What happened to the row, when.
struct Run {
    t0: Instant,
    /// Each event of the row with the virtual time since `t0`.
    events: Vec<(Duration, RowEvent)>,
    row: CheckRow,
}

impl Run {
    /// When the row entered `phase` (or finished, for `None`).
    fn at(&self, phase: Option<RowPhase>) -> Duration {
        let want = match phase {
            Some(p) => RowEvent::Entered(p),
            None => RowEvent::Finished,
        };
        self.events
            .iter()
            .find(|(_, e)| *e == want)
            .unwrap_or_else(|| panic!("{want:?} never happened: {:?}", self.events))
            .0
    }

    /// How long each of the four phases took, in order.
    fn phases(&self) -> [Duration; 4] {
        use RowPhase::*;
        let marks = [
            self.at(Some(Allocate)),
            self.at(Some(Permission)),
            self.at(Some(Echo)),
            self.at(Some(Release)),
            self.at(None),
        ];
        [0, 1, 2, 3].map(|i| marks[i + 1] - marks[i])
    }
}

/// Drive a row for `url` over a virtual network until it finishes (or the budget of `timeout`
/// ends it). `server` decides what the server does; `cancel_at` sends Ctrl-C at that time.
fn run_row(
    url: &str,
    owd: Duration,
    hop: Duration,
    timeout: Duration,
    mut server: RelayServer,
    cancel_at: Option<Duration>,
) -> Run {
    let t0 = Instant::now();
    let parsed = url.parse().unwrap();
    let input = RowInput {
        url: parsed,
        probed: url.parse().unwrap(),
        addr: "198.18.0.1:3478".parse().unwrap(),
        dns: Stage::not_checked("IP literal: no DNS"),
        username: Some("alice".into()),
        password: None,
    };
    let turn = input.probed.is_turn();
    let settings = RowSettings {
        err_ctx: ErrorContext::default(),
        echo_timeout: Duration::from_secs(10),
        budget: Budget::new(t0, timeout),
        nonce: 7,
    };
    let b = turn.then(|| Ok(client(Some("alice"), Some("pw"))));
    let mut row = Row::new(
        t0,
        blank(&input),
        settings,
        client(Some("alice"), Some("pw")),
        b,
    );
    let mut in_flight: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut send = |heap: &mut BinaryHeap<Reverse<InFlight>>, at, to, bytes| {
        seq += 1;
        heap.push(Reverse((at, seq, to, bytes)));
    };
    let mut now = t0;
    let mut events = vec![];
    let mut cancel = cancel_at.map(|d| t0 + d);
    for _ in 0..100_000 {
        while let Some((link, bytes)) = row.poll_transmit() {
            send(&mut in_flight, now + owd, To::Server(link), bytes);
        }
        while let Some(ev) = row.poll_event() {
            events.push((now - t0, ev));
        }
        if row.is_done() {
            return Run {
                t0,
                events,
                row: row.into_row(),
            };
        }
        let timer = row.poll_timeout();
        let next = in_flight.peek().map(|Reverse((at, ..))| *at);
        match (cancel, next, timer) {
            (Some(c), n, t) if n.is_none_or(|n| c <= n) && t.is_none_or(|t| c <= t) => {
                now = c;
                cancel = None;
                row.handle_cancel(now);
            }
            (_, Some(at), t) if t.is_none_or(|t| at <= t) => {
                let Reverse((at, _, to, bytes)) = in_flight.pop().unwrap();
                now = at;
                match to {
                    To::Row(n) => row.handle_input(at, n, &bytes),
                    To::Server(from) => {
                        for (n, relayed, out) in server.handle(from, &bytes) {
                            let delay = owd + if relayed { hop } else { Duration::ZERO };
                            send(&mut in_flight, at + delay, To::Row(n), out);
                        }
                    }
                }
            }
            (_, _, Some(t)) => {
                now = t;
                row.handle_timeout(t);
            }
            _ => panic!("stalled: nothing in flight, no timer, row not done: {row:?}"),
        }
    }
    panic!("the row did not finish");
}

const OWD: Duration = Duration::from_millis(25);
const RTT: Duration = Duration::from_millis(50);
const LONG: Duration = Duration::from_secs(60);

fn turn_row(hop: Duration) -> Run {
    run_row(
        "turn:198.18.0.1?transport=udp",
        OWD,
        hop,
        LONG,
        RelayServer::new(2),
        None,
    )
}

#[test]
fn turn_udp_row_is_six_round_trips() {
    let run = turn_row(Duration::ZERO);
    assert_eq!(
        run.phases(),
        [RTT * 2, RTT, RTT * 2, RTT],
        "allocate, permission, echo, release"
    );
    assert_eq!(run.at(None), RTT * 6);
    let r = &run.row;
    for (name, ok) in [
        ("binding", r.binding.is_ok()),
        ("challenge", r.challenge.is_ok()),
        ("allocate", r.allocate.is_ok()),
        ("permission", r.permission.is_ok()),
        ("channel", r.channel.is_ok()),
        ("send_echo", r.send_echo.is_ok()),
        ("channel_echo", r.channel_echo.is_ok()),
        ("release", r.release.is_ok()),
    ] {
        assert!(ok, "{name}: {r:#?}");
    }
    // Each stage's time is its own round trips: the echoes cross the path twice.
    assert_eq!(r.binding.ms(), Some(50.0));
    assert_eq!(r.send_echo.ms(), Some(100.0));
    assert_eq!(r.channel_echo.ms(), Some(100.0));
    assert_eq!(run.t0 + run.at(None), run.t0 + RTT * 6);
}

#[test]
fn the_relay_hop_is_counted_twice_and_only_in_the_echo() {
    let hop = Duration::from_millis(3);
    let run = turn_row(hop);
    assert_eq!(run.phases(), [RTT * 2, RTT, RTT * 2 + hop * 2, RTT]);
}

#[test]
fn stun_only_row_is_one_round_trip() {
    let run = run_row(
        "stun:198.18.0.1",
        OWD,
        Duration::ZERO,
        LONG,
        RelayServer::new(1),
        None,
    );
    assert_eq!(run.at(Some(RowPhase::Release)), RTT);
    assert_eq!(run.at(None), RTT, "nothing to release");
    assert!(run.row.binding.is_ok(), "{:#?}", run.row);
}

/// The whole row in round trips, transport set-up included, as `scripts/bench-check.sh`
/// prints it: TCP connect 1, TLS 1.2 handshake 2 (coturn 4.6.1's ceiling), TLS 1.3 1.
#[test]
fn row_minimum_per_transport() {
    let turn = turn_row(Duration::ZERO).at(None);
    let rtts = |setup: u32| (turn + RTT * setup).as_millis() / RTT.as_millis();
    assert_eq!(rtts(0), 6, "TURN/UDP");
    assert_eq!(rtts(1), 7, "TURN/TCP: + connect");
    assert_eq!(rtts(1 + 2), 9, "TURN/TLS 1.2: + connect + 2-RTT handshake");
    assert_eq!(rtts(1 + 1), 8, "TURN/TLS 1.3: + connect + 1-RTT handshake");
}

/// A server that answers the 401 but signs every authenticated answer with another key: the
/// client discards them (RFC 8489 §9.2.5) and the row runs into the deadline. The release is
/// sent at the probe deadline and waited for only inside `--timeout`: the row ends at the
/// deadline, not after it.
#[test]
fn a_garbled_allocate_is_released_inside_the_deadline() {
    let timeout = Duration::from_millis(250);
    let mut server = RelayServer::new(2);
    for f in &mut server.fakes {
        f.wrong_key = true;
    }
    let run = run_row(
        "turn:198.18.0.1?transport=udp",
        Duration::from_millis(5),
        Duration::ZERO,
        timeout,
        server,
        None,
    );
    let released_at = run.at(Some(RowPhase::Release));
    assert_eq!(released_at, Duration::from_millis(225), "probe deadline");
    assert_eq!(
        run.at(None),
        timeout,
        "the release waits until the deadline"
    );
    let r = &run.row;
    assert!(r.challenge.is_ok(), "{r:#?}");
    let Outcome::Failed(f) = &r.allocate else {
        panic!("{r:#?}");
    };
    assert_eq!(f.failure.phase, Phase::Timeout);
    assert_eq!(f.failure.reason.as_deref(), Some("replies rejected"));
    assert!(f.failure.cause.contains("MESSAGE-INTEGRITY"), "{f:?}");
    // The row has no allocation to report a release for; the Refresh still went out.
    assert!(
        matches!(r.release.reason(), Some(crate::model::Reason::Skipped(_))),
        "{r:#?}"
    );
}

/// Ctrl-C while the Allocates are in flight: the waits stop at once with the operation's own
/// phase, and both allocations are still released (the release is not cancelled).
#[test]
fn ctrl_c_stops_the_wait_and_releases() {
    // At 75 ms the 401s are answered and the authenticated Allocates are out.
    let run = run_row(
        "turn:198.18.0.1?transport=udp",
        OWD,
        Duration::ZERO,
        LONG,
        RelayServer::new(2),
        Some(Duration::from_millis(75)),
    );
    let r = &run.row;
    assert!(r.binding.is_ok() && r.challenge.is_ok(), "{r:#?}");
    let Outcome::Failed(f) = &r.allocate else {
        panic!("{r:#?}");
    };
    assert_eq!(f.failure.phase, Phase::TurnAllocate);
    assert_eq!(f.failure.reason.as_deref(), Some("cancelled"));
    assert_eq!(run.at(Some(RowPhase::Release)), Duration::from_millis(75));
    // The Allocates' answers (at 100 ms) are late; the releases are answered at 125 ms.
    assert_eq!(run.at(None), Duration::from_millis(125));
    assert!(
        matches!(
            r.permission.reason(),
            Some(crate::model::Reason::Skipped(_))
        ),
        "{r:#?}"
    );
}
