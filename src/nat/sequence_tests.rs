//! The whole RFC 5780 sequence as real STUN bytes through the sans-IO Binding machine, on a
//! virtual clock, across a simulated NAT (every RFC 4787 mapping × filtering) and a simulated
//! server (honest, or lying), then classified. This is the discovery driver's order (filtering
//! tests first on a fresh socket, then mapping tests on another) without any socket.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rtc::stun::addr::MappedAddress;
use rtc::stun::attributes::{ATTR_CHANGE_REQUEST, ATTR_OTHER_ADDRESS, ATTR_RESPONSE_ORIGIN};
use rtc::stun::message::{Message, CLASS_SUCCESS_RESPONSE, METHOD_BINDING};
use rtc::stun::xoraddr::XorMappedAddress;

use super::classify::{classify, Determination, FilteringBehavior as F, MappingBehavior as M};
use crate::model::nat::{Answer, Change, Exchange, Observations, Rfc5780};
use crate::proto::binding::{Binding, BindingOutcome};
use crate::proto::stun;

const PRIMARY: &str = "198.18.0.1:3478";
const ALTERNATE: &str = "198.18.0.2:3479";
const NAT_IP: &str = "198.18.0.254";
const ONE_WAY: Duration = Duration::from_millis(20);
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

/// One exchange on the virtual clock: the Binding machine retransmits until an answer gets
/// through the NAT or the test's time is up.
fn exchange(
    nat: &mut Nat,
    server: Server,
    clock: &mut Instant,
    local: SocketAddr,
    to: SocketAddr,
    change: Change,
) -> Exchange {
    let flags = match change {
        Change::None => 0,
        Change::Port => stun::CHANGE_PORT,
        Change::IpAndPort => stun::CHANGE_IP | stun::CHANGE_PORT,
    };
    let txid = stun::new_txid();
    let start = *clock;
    let mut b = Binding::with_request(
        start,
        Duration::from_millis(250),
        false,
        txid,
        Some(stun::binding_request_with(txid, flags, None)),
    );
    let mut from = None;
    loop {
        while let Some(req) = b.poll_transmit() {
            let ext = nat.out(local, to);
            if let Some((src, resp)) = serve(server, &req, to, ext) {
                if nat.inbound(ext.port(), src).is_some() {
                    let d = stun::decode(&resp).unwrap();
                    if b.handle_input(*clock + ONE_WAY * 2, &d) {
                        from = Some(src);
                    }
                }
            }
        }
        if b.outcome().is_some() {
            break;
        }
        let due = b.poll_timeout().unwrap();
        if due >= start + TEST_TIMEOUT {
            *clock = start + TEST_TIMEOUT;
            b.abandon();
            break;
        }
        *clock = due;
        b.handle_timeout(due);
    }
    let answer = match (b.outcome().cloned(), from) {
        (
            Some(BindingOutcome::Success {
                mapped,
                rtt,
                other_address,
                response_origin,
                ..
            }),
            Some(from),
        ) => {
            *clock = start + rtt;
            Answer::Reply {
                from,
                mapped: Some(mapped),
                plain_mapped: None,
                response_origin,
                other_address,
                rtt_ms: rtt.as_secs_f64() * 1000.0,
            }
        }
        _ => Answer::Timeout,
    };
    Exchange {
        local,
        to,
        change,
        answer,
    }
}

/// The driver's sequence: filtering I, II, III on one fresh socket; mapping I, II, III on
/// another; a multi-server Binding on a third.
fn discover(mapping: M, filtering: F, server: Server) -> Observations {
    let mut nat = Nat::new(mapping, filtering);
    let mut clock = Instant::now();
    let (p, a) = (sa(PRIMARY), sa(ALTERNATE));
    let f_sock = sa("100.64.0.2:5001");
    let filtering_tests = vec![
        exchange(&mut nat, server, &mut clock, f_sock, p, Change::None),
        exchange(&mut nat, server, &mut clock, f_sock, p, Change::IpAndPort),
        exchange(&mut nat, server, &mut clock, f_sock, p, Change::Port),
    ];
    let m_sock = sa("100.64.0.2:5002");
    let mapping_tests = vec![
        exchange(&mut nat, server, &mut clock, m_sock, p, Change::None),
        exchange(
            &mut nat,
            server,
            &mut clock,
            m_sock,
            SocketAddr::new(a.ip(), p.port()),
            Change::None,
        ),
        exchange(&mut nat, server, &mut clock, m_sock, a, Change::None),
    ];
    let multi = vec![exchange(
        &mut nat,
        server,
        &mut clock,
        sa("100.64.0.2:5003"),
        p,
        Change::None,
    )];
    Observations {
        family: "ipv4".into(),
        local_addresses: vec!["100.64.0.2".parse().unwrap()],
        rfc5780: vec![Rfc5780 {
            url: format!("stun:{PRIMARY}"),
            primary: p,
            filtering: Some(filtering_tests),
            mapping: Some(mapping_tests),
        }],
        multi,
        hairpin: None,
        lifetime: None,
        tcp_fallback: None,
    }
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
    let mut nat = Nat::new(M::EndpointIndependent, F::AddressAndPortDependent);
    let mut clock = Instant::now();
    let t0 = clock;
    let s = sa("100.64.0.2:6000");
    let first = exchange(
        &mut nat,
        Server::Honest,
        &mut clock,
        s,
        sa(PRIMARY),
        Change::None,
    );
    assert!(matches!(first.answer, Answer::Reply { .. }));
    assert_eq!(clock - t0, ONE_WAY * 2, "one round trip");
    let filtered = exchange(
        &mut nat,
        Server::Honest,
        &mut clock,
        s,
        sa(PRIMARY),
        Change::IpAndPort,
    );
    assert_eq!(filtered.answer, Answer::Timeout);
    assert_eq!(
        clock - t0,
        ONE_WAY * 2 + TEST_TIMEOUT,
        "a filtered test waits out its timeout"
    );
}
