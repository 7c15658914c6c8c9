//! The whole RFC 5780 sequence as real STUN bytes: the very [`Sequence`] machine the discovery
//! driver runs, here on a virtual clock, across a simulated NAT (every RFC 4787 mapping ×
//! filtering) and a simulated server (honest, or lying), then classified. No socket anywhere;
//! the harness gives each of the machine's sockets a local address behind the NAT.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rtc::stun::addr::MappedAddress;
use rtc::stun::attributes::{ATTR_CHANGE_REQUEST, ATTR_OTHER_ADDRESS, ATTR_RESPONSE_ORIGIN};
use rtc::stun::message::{Message, CLASS_SUCCESS_RESPONSE, METHOD_BINDING};
use rtc::stun::xoraddr::XorMappedAddress;

use super::classify::{classify, Determination, FilteringBehavior as F, MappingBehavior as M};
use super::sequence::{Sequence, SequenceEvent, Settings, SocketId, Target};
use crate::model::nat::{Answer, Change, Exchange, Observations, TestLabel};
use crate::proto::stun;

const PRIMARY: &str = "198.18.0.1:3478";
const ALTERNATE: &str = "198.18.0.2:3479";
const NAT_IP: &str = "198.18.0.254";
const LOCAL_IP: &str = "100.64.0.2";
const ONE_WAY: Duration = Duration::from_millis(20);
const RTO: Duration = Duration::from_millis(250);
const TEST_TIMEOUT: Duration = Duration::from_millis(1500);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An RFC 4787 NAT: mappings keyed by what the behaviour says, filtering by what was sent.
struct Nat {
    mapping: M,
    filtering: F,
    next_port: u16,
    map: HashMap<(SocketAddr, Option<SocketAddr>), u16>,
    back: HashMap<u16, SocketAddr>,
    sent: HashSet<(SocketAddr, SocketAddr)>,
    /// Whether a packet to the NAT's own external address is sent back in (RFC 4787 §6).
    hairpinning: bool,
}

impl Nat {
    fn new(mapping: M, filtering: F) -> Nat {
        Nat {
            mapping,
            filtering,
            next_port: 40000,
            map: HashMap::new(),
            back: HashMap::new(),
            sent: HashSet::new(),
            hairpinning: false,
        }
    }

    /// Outbound: the external address the packet leaves with.
    fn out(&mut self, local: SocketAddr, dst: SocketAddr) -> SocketAddr {
        let key_dst = match self.mapping {
            M::EndpointIndependent => None,
            M::AddressDependent => Some(SocketAddr::new(dst.ip(), 0)),
            _ => Some(dst),
        };
        let port = *self.map.entry((local, key_dst)).or_insert_with(|| {
            self.next_port += 1;
            self.next_port
        });
        self.back.insert(port, local);
        self.sent.insert((local, dst));
        SocketAddr::new(NAT_IP.parse().unwrap(), port)
    }

    /// Inbound to external `port` from `src`: the local socket, when the filter lets it in.
    fn inbound(&self, port: u16, src: SocketAddr) -> Option<SocketAddr> {
        let local = *self.back.get(&port)?;
        let allowed = match self.filtering {
            F::EndpointIndependent => true,
            F::AddressDependent => self
                .sent
                .iter()
                .any(|(l, d)| *l == local && d.ip() == src.ip()),
            F::AddressAndPortDependent => self.sent.contains(&(local, src)),
        };
        allowed.then_some(local)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Honest,
    /// Answers CHANGE-REQUEST from the address the request went to.
    IgnoresChange,
}

/// The server's answer to a request that arrived at `at` from `from`: source and bytes.
fn serve(
    server: Server,
    req: &[u8],
    at: SocketAddr,
    from: SocketAddr,
) -> Option<(SocketAddr, Vec<u8>)> {
    let mut m = Message::new();
    m.raw = req.to_vec();
    m.decode().ok()?;
    let flags = m
        .get(ATTR_CHANGE_REQUEST)
        .ok()
        .and_then(|v| v.get(3).copied())
        .unwrap_or(0);
    let (p, a) = (sa(PRIMARY), sa(ALTERNATE));
    let other_ip = if at.ip() == p.ip() { a.ip() } else { p.ip() };
    let other_port = if at.port() == p.port() {
        a.port()
    } else {
        p.port()
    };
    let src = match (
        server,
        flags & stun::CHANGE_IP != 0,
        flags & stun::CHANGE_PORT != 0,
    ) {
        (Server::IgnoresChange, _, _) | (_, false, false) => at,
        (_, true, true) => SocketAddr::new(other_ip, other_port),
        (_, false, true) => SocketAddr::new(at.ip(), other_port),
        (_, true, false) => SocketAddr::new(other_ip, at.port()),
    };
    let mut r = stun::start(METHOD_BINDING, CLASS_SUCCESS_RESPONSE, m.transaction_id.0);
    stun::add(
        &mut r,
        &XorMappedAddress {
            ip: from.ip(),
            port: from.port(),
        },
    )
    .ok()?;
    MappedAddress {
        ip: a.ip(),
        port: a.port(),
    }
    .add_to_as(&mut r, ATTR_OTHER_ADDRESS)
    .ok()?;
    MappedAddress {
        ip: src.ip(),
        port: src.port(),
    }
    .add_to_as(&mut r, ATTR_RESPONSE_ORIGIN)
    .ok()?;
    r.write_length();
    Some((src, stun::finish(r)))
}

/// What one run of the real [`Sequence`] did, on the virtual clock.
struct Run {
    t0: Instant,
    /// Each ended exchange as streamed: when, which test, what was observed.
    events: Vec<(Instant, TestLabel, Exchange)>,
    /// Every datagram the machine sent: when, from which socket, to where, CHANGE-REQUEST.
    sent: Vec<(Instant, SocketId, SocketAddr, Change)>,
    /// The final observations.
    observations: Observations,
    /// When the machine ended.
    ended: Instant,
}

/// A datagram on its way to the NAT's external `port`.
struct InFlight {
    at: Instant,
    port: u16,
    src: SocketAddr,
    bytes: Vec<u8>,
}

/// The CHANGE-REQUEST of a request, read back from its bytes.
fn change_of(req: &[u8]) -> Change {
    let mut m = Message::new();
    m.raw = req.to_vec();
    let flags = m
        .decode()
        .ok()
        .and_then(|()| m.get(ATTR_CHANGE_REQUEST).ok())
        .and_then(|v| v.get(3).copied())
        .unwrap_or(0);
    match (flags & stun::CHANGE_IP != 0, flags & stun::CHANGE_PORT != 0) {
        (true, _) => Change::IpAndPort,
        (false, true) => Change::Port,
        (false, false) => Change::None,
    }
}

/// The local address the harness gives each socket the machine asks for: 100.64.0.2:5001 and
/// up, in the order of [`Sequence::sockets`] (one server: filtering 5001, mapping 5002, multi
/// 5003).
fn bind_all(servers: usize) -> BTreeMap<SocketId, SocketAddr> {
    Sequence::sockets(servers)
        .into_iter()
        .zip(5001u16..)
        .map(|(id, port)| (id, SocketAddr::new(LOCAL_IP.parse().unwrap(), port)))
        .collect()
}

/// Drive the real sequence machine against one simulated server behind `nat`, on a virtual
/// clock: each request reaches the server after [`ONE_WAY`], its answer the NAT after another,
/// and the NAT's filter decides on arrival whether it reaches the socket.
fn run(nat: &mut Nat, server: Server) -> Run {
    let t0 = Instant::now();
    let bound = bind_all(1);
    let socket_of: HashMap<SocketAddr, SocketId> = bound.iter().map(|(i, a)| (*a, *i)).collect();
    let target = Target {
        family: "ipv4".into(),
        local_addresses: vec![LOCAL_IP.parse().unwrap()],
        servers: vec![(format!("stun:{PRIMARY}").parse().unwrap(), sa(PRIMARY))],
    };
    let settings = Settings {
        rto: RTO,
        test_timeout: TEST_TIMEOUT,
        deadline: t0 + Duration::from_secs(60),
    };
    let mut seq = Sequence::new(t0, target, settings, bound.clone());
    let (mut now, mut events, mut sent) = (t0, vec![], vec![]);
    let mut in_flight: Vec<InFlight> = vec![];
    loop {
        while let Some(e) = seq.poll_event() {
            match e {
                SequenceEvent::Exchange { test, exchange, .. } => {
                    events.push((now, test, exchange))
                }
                SequenceEvent::Done(o) => {
                    assert_eq!(seq.poll_timeout(), None, "an ended sequence has no timer");
                    return Run {
                        t0,
                        events,
                        sent,
                        observations: o,
                        ended: now,
                    };
                }
            }
        }
        while let Some((id, to, req)) = seq.poll_transmit() {
            sent.push((now, id, to, change_of(&req)));
            let ext = nat.out(bound[&id], to);
            if to.ip() == NAT_IP.parse::<IpAddr>().unwrap() {
                // To our own external address: back in through the NAT, if it hairpins.
                if nat.hairpinning {
                    in_flight.push(InFlight {
                        at: now + ONE_WAY,
                        port: to.port(),
                        src: ext,
                        bytes: req,
                    });
                }
            } else if let Some((src, resp)) = serve(server, &req, to, ext) {
                in_flight.push(InFlight {
                    at: now + ONE_WAY * 2,
                    port: ext.port(),
                    src,
                    bytes: resp,
                });
            }
        }
        let timer = seq.poll_timeout().expect("a running sequence has a timer");
        let first = (0..in_flight.len()).min_by_key(|&k| in_flight[k].at);
        match first {
            Some(k) if in_flight[k].at <= timer => {
                let p = in_flight.remove(k);
                now = p.at;
                if let Some(local) = nat.inbound(p.port, p.src) {
                    seq.handle_input(now, socket_of[&local], p.src, &p.bytes);
                }
            }
            _ => {
                assert!(timer >= now, "timers never go back");
                now = timer;
                seq.handle_timeout(now);
            }
        }
    }
}

/// The observations of the whole sequence behind a fresh NAT.
fn discover(mapping: M, filtering: F, server: Server) -> Observations {
    run(&mut Nat::new(mapping, filtering), server).observations
}

#[test]
fn every_mapping_and_filtering_behaviour_is_found() {
    for mapping in [
        M::EndpointIndependent,
        M::AddressDependent,
        M::AddressAndPortDependent,
    ] {
        for filtering in [
            F::EndpointIndependent,
            F::AddressDependent,
            F::AddressAndPortDependent,
        ] {
            let v = classify(&discover(mapping, filtering, Server::Honest));
            assert_eq!(
                v.mapping.value(),
                Some(&mapping),
                "{mapping:?}/{filtering:?}: {:?}",
                v.mapping
            );
            assert_eq!(
                v.filtering.value(),
                Some(&filtering),
                "{mapping:?}/{filtering:?}: {:?}",
                v.filtering
            );
        }
    }
}

#[test]
fn a_server_ignoring_change_request_is_never_endpoint_independent() {
    // Behind the most permissive NAT, only validation can catch the lie.
    let v = classify(&discover(
        M::EndpointIndependent,
        F::EndpointIndependent,
        Server::IgnoresChange,
    ));
    assert!(
        matches!(v.filtering, Determination::Inconclusive { .. }),
        "{:?}",
        v.filtering
    );
}

#[test]
fn filtered_tests_cost_their_timeout_on_the_virtual_clock() {
    let r = run(
        &mut Nat::new(M::EndpointIndependent, F::AddressAndPortDependent),
        Server::Honest,
    );
    let at = |label| {
        r.events
            .iter()
            .find(|(_, l, _)| *l == label)
            .unwrap_or_else(|| panic!("{label} ran"))
    };
    let (t, _, first) = at(TestLabel::FilteringI);
    assert!(matches!(first.answer, Answer::Reply { .. }), "{first:?}");
    assert_eq!(*t - r.t0, ONE_WAY * 2, "one round trip");
    let (t, _, filtered) = at(TestLabel::FilteringII);
    assert_eq!(filtered.answer, Answer::Timeout);
    assert_eq!(
        *t - r.t0,
        ONE_WAY * 2 + TEST_TIMEOUT,
        "a filtered test waits out its timeout"
    );
    let (t, _, _) = at(TestLabel::FilteringIII);
    assert_eq!(
        *t - r.t0,
        ONE_WAY * 2 + TEST_TIMEOUT * 2,
        "so does test III"
    );
}

#[test]
fn exchanges_run_in_the_documented_order_filtering_first() {
    // RFC 5780 §4.4 first, on its own socket, so that nothing the mapping tests send opens the
    // NAT for the filtering tests; then §4.3 on another socket; then the comparison socket.
    let r = run(
        &mut Nat::new(M::EndpointIndependent, F::EndpointIndependent),
        Server::Honest,
    );
    let (p, a) = (sa(PRIMARY), sa(ALTERNATE));
    let (f, m) = (SocketId::Filtering(0), SocketId::Mapping(0));
    let bound = bind_all(1);
    let expected = [
        (TestLabel::FilteringI, f, p, Change::None),
        (TestLabel::FilteringII, f, p, Change::IpAndPort),
        (TestLabel::FilteringIII, f, p, Change::Port),
        (TestLabel::MappingI, m, p, Change::None),
        (
            TestLabel::MappingII,
            m,
            SocketAddr::new(a.ip(), p.port()),
            Change::None,
        ),
        (TestLabel::MappingIII, m, a, Change::None),
        (TestLabel::Multi, SocketId::Multi, p, Change::None),
    ];
    let streamed: Vec<_> = r
        .events
        .iter()
        .map(|(_, l, e)| (*l, e.local, e.to, e.change))
        .collect();
    let want: Vec<_> = expected
        .iter()
        .map(|(l, s, to, c)| (*l, bound[s], *to, *c))
        .collect();
    assert_eq!(streamed, want, "the streamed exchanges, in order");
    assert_eq!(
        TestLabel::ALL.to_vec(),
        want.iter().map(|w| w.0).collect::<Vec<_>>()
    );
    // On the wire: every exchange answered at once, so one datagram each, in the same order,
    // then the hairpin request (resent until its timeout: this NAT does not hairpin) to our own
    // mapped address, from the comparison socket.
    let wire: Vec<_> = r.sent.iter().map(|(_, s, to, c)| (*s, *to, *c)).collect();
    let want_wire: Vec<_> = expected.iter().map(|(_, s, to, c)| (*s, *to, *c)).collect();
    assert_eq!(wire[..want_wire.len()], want_wire);
    let mapped = r.observations.multi[0].answer.mapped().unwrap();
    assert!(
        wire[want_wire.len()..]
            .iter()
            .all(|w| *w == (SocketId::Multi, mapped, Change::None)),
        "{wire:?}"
    );
    // And the observations keep that order.
    let o = &r.observations;
    assert_eq!(o.rfc5780.len(), 1);
    let tests: Vec<_> = (o.rfc5780[0].filtering.iter().flatten())
        .chain(o.rfc5780[0].mapping.iter().flatten())
        .chain(&o.multi)
        .cloned()
        .collect();
    assert_eq!(
        tests,
        r.events.iter().map(|e| e.2.clone()).collect::<Vec<_>>()
    );
}

#[test]
fn hairpin_is_seen_only_when_the_request_comes_back() {
    for hairpinning in [true, false] {
        let mut nat = Nat::new(M::EndpointIndependent, F::EndpointIndependent);
        nat.hairpinning = hairpinning;
        let r = run(&mut nat, Server::Honest);
        let h = r.observations.hairpin.as_ref().expect("hairpin ran");
        assert_eq!(h.came_back, hairpinning, "{h:?}");
        assert_eq!(h.local, bind_all(1)[&SocketId::Multi]);
        let (last, _, _) = r.events.last().unwrap();
        let took = r.ended - *last;
        if hairpinning {
            assert_eq!(took, ONE_WAY, "the request is back through the NAT at once");
        } else {
            assert_eq!(took, TEST_TIMEOUT, "silence costs the test's timeout");
            // Resent with doubling intervals from RTO until then: 0, 250, 750 ms.
            let resends: Vec<_> = (r.sent.iter())
                .filter(|(_, _, to, _)| *to == h.to)
                .map(|(t, ..)| *t - *last)
                .collect();
            assert_eq!(resends, [Duration::ZERO, RTO, RTO * 3]);
        }
    }
}
