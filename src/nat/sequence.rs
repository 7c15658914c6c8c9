//! The RFC 5780 test sequence of one address family, sans-IO: which Binding exchange runs next,
//! from which socket, to which address, with which CHANGE-REQUEST, and what its answer records.
//! The async driver (`nat::discover`) only moves bytes and reads the clock; the virtual-clock
//! tests (`nat::sequence_tests`) drive this very machine through a simulated NAT.
//!
//! Order (RFC 5780 §4.4 before §4.3): per server, the filtering tests I, II and III run first,
//! on a socket of their own, so that nothing the mapping tests send can open the NAT for them;
//! then the mapping tests I, II and III on another socket. Then one socket sends a Binding to
//! every server in turn (the multi-server comparison, RFC 4787 §4.1 by comparison), and finally
//! that socket sends a request to its own mapped address to see whether it comes back
//! (hairpinning, RFC 5780 §4.5).
//!
//! Each exchange is one [`Binding`] transaction: retransmitted on its RFC 5389 §7.2.1 schedule,
//! ended by the test's own timeout (a missing answer is itself a result) and never waiting past
//! the run's deadline.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::ice_url::ServerUrl;
use crate::model::nat::{Answer, Change, Exchange, Hairpin, Observations, Rfc5780, TestLabel};
use crate::proto::binding::{Binding, BindingOutcome};
use crate::proto::stun::{self, Class, TxId};
use crate::proto::SansIo;

/// One of the sequence's UDP sockets, by role; the driver binds one real socket per id.
///
/// Every test of one role shares its socket, and roles never share: a filtering socket must be
/// fresh (RFC 5780 §4.4) and the mapping socket must not have been opened by filtering tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SocketId {
    /// The filtering tests of server `n` (index into the servers given).
    Filtering(usize),
    /// The mapping tests of server `n`.
    Mapping(usize),
    /// The multi-server comparison and the hairpin test.
    Multi,
}

/// How long each exchange may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Initial retransmission timeout (RFC 5389 §7.2.1 RTO).
    pub rto: Duration,
    /// How long one test waits for its answer before recording that none came.
    pub test_timeout: Duration,
    /// The run's deadline: no Binding exchange waits past it (the hairpin test, bounded by
    /// `test_timeout` alone, is the exception, as it has always been).
    pub deadline: Instant,
}

/// What one family's sequence examines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `ipv4` or `ipv6`, copied into the observations.
    pub family: String,
    /// This host's addresses of the family (to spot "no NAT"), copied into the observations.
    pub local_addresses: Vec<IpAddr>,
    /// The servers, resolved, in the order given (duplicates already removed).
    pub servers: Vec<(ServerUrl, SocketAddr)>,
}

/// What the sequence reports as it goes.
#[derive(Debug, Clone, PartialEq)]
pub enum SequenceEvent {
    /// A Binding exchange ended (answered, error, rejected or silent).
    Exchange {
        /// The server it tested.
        server: ServerUrl,
        /// Which test it was.
        test: TestLabel,
        /// What was sent and what came back.
        exchange: Exchange,
    },
    /// Every test has run. `lifetime` and `tcp_fallback` are `None`: they are about idle time
    /// and TCP, not this sequence's Binding exchanges, and the driver fills them in.
    Done(Observations),
}

/// One test's Binding exchange: the [`Binding`] machine plus the bookkeeping of the NAT tests.
/// It ends with an answer, at the test's timeout, or at the run's deadline, whichever is first.
#[derive(Debug)]
pub struct BindingTest {
    local: SocketAddr,
    to: SocketAddr,
    change: Change,
    txid: TxId,
    binding: Binding,
    end: Instant,
    from: Option<SocketAddr>,
}

impl BindingTest {
    /// Start at `now` a Binding from `local` to `to` with the CHANGE-REQUEST of `change` and
    /// RESPONSE-PORT when given (RFC 5780 §7.2, §7.5); the first transmission is ready at once.
    pub fn new(
        now: Instant,
        local: SocketAddr,
        to: SocketAddr,
        change: Change,
        response_port: Option<u16>,
        settings: &Settings,
    ) -> Self {
        let flags = match change {
            Change::None => 0,
            Change::Port => stun::CHANGE_PORT,
            Change::IpAndPort => stun::CHANGE_IP | stun::CHANGE_PORT,
        };
        let txid = stun::new_txid();
        let request = stun::binding_request_with(txid, flags, response_port);
        BindingTest {
            local,
            to,
            change,
            txid,
            binding: Binding::with_request(now, settings.rto, false, txid, Some(request)),
            end: settings.deadline.min(now + settings.test_timeout),
            from: None,
        }
    }

    /// Bytes to send to the test's destination now.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.binding.poll_transmit()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called: the next
    /// retransmission, or the end of the test. Meaningless once [`result`](Self::result) is
    /// `Some`.
    pub fn poll_timeout(&self) -> Instant {
        self.binding
            .poll_timeout()
            .map_or(self.end, |t| t.min(self.end))
    }

    /// A datagram arrived on the test's socket from `from`.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        // Answers to earlier tests on this socket (a retransmission answered late) are
        // expected strays, not rejects; everything else the Binding machine judges, and logs
        // what it must discard (RFC 8489 §6.3) so that garbage is not mistaken for silence.
        let stray = stun::txid_of(bytes).is_some_and(|id| id != self.txid);
        // The source is recorded, not checked: where the answer comes from is what the
        // filtering tests observe (RFC 5780 §4.4), and the classifier validates it.
        if !stray && self.binding.handle_bytes(now, bytes) {
            self.from = Some(from);
        }
    }

    /// Time passed: retransmit when due, or end the test when its time is up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.end {
            self.binding.abandon();
        } else {
            self.binding.handle_timeout(now);
        }
    }

    /// The exchange as observed, once the test has ended.
    pub fn result(&self) -> Option<Exchange> {
        let answer = match (self.binding.outcome()?, self.from) {
            (
                BindingOutcome::Success {
                    mapped,
                    plain_mapped,
                    rtt,
                    other_address,
                    response_origin,
                    ..
                },
                Some(from),
            ) => Answer::Reply {
                from,
                // XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS from an RFC 3489 server), and
                // MAPPED-ADDRESS on its own so the classifier can spot an ALG rewriting only the
                // plain one.
                mapped: Some(*mapped),
                plain_mapped: *plain_mapped,
                response_origin: *response_origin,
                other_address: *other_address,
                rtt_ms: crate::model::ms(*rtt),
            },
            (BindingOutcome::Error(e), _) => Answer::Error {
                code: e.code,
                reason: e.reason.clone(),
            },
            // Replies that had to be thrown away are an answer of their own, not silence.
            _ => match self.binding.rejects().summary() {
                Some(why) => Answer::Rejected { why },
                None => Answer::Timeout,
            },
        };
        Some(Exchange {
            local: self.local,
            to: self.to,
            change: self.change,
            answer,
        })
    }
}

/// The hairpin test (RFC 5780 §4.5): a Binding request to our own mapped address, resent with
/// doubling intervals from RTO, until it comes back through the NAT or `test_timeout` passes.
/// What comes back is our own *request*; nobody answers it.
#[derive(Debug)]
struct HairpinTest {
    local: SocketAddr,
    to: SocketAddr,
    txid: TxId,
    request: Vec<u8>,
    outbox: Option<Vec<u8>>,
    next_send: Instant,
    interval: Duration,
    end: Instant,
    came_back: Option<bool>,
}

impl HairpinTest {
    fn new(now: Instant, local: SocketAddr, to: SocketAddr, settings: &Settings) -> Self {
        let txid = stun::new_txid();
        let mut h = HairpinTest {
            local,
            to,
            txid,
            request: stun::binding_request(txid),
            outbox: None,
            next_send: now,
            interval: settings.rto,
            end: now + settings.test_timeout,
            came_back: None,
        };
        h.handle_timeout(now);
        h
    }

    fn poll_timeout(&self) -> Instant {
        self.next_send.min(self.end)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.came_back.is_some() {
            return;
        }
        if now >= self.end {
            self.came_back = Some(false);
        } else if now >= self.next_send {
            self.outbox = Some(self.request.clone());
            self.next_send = now + self.interval;
            self.interval *= 2;
        }
    }

    fn handle_input(&mut self, bytes: &[u8]) {
        let ours = stun::txid_of(bytes) == Some(self.txid)
            && stun::decode(bytes).is_ok_and(|d| d.class == Some(Class::Request));
        if ours && self.came_back.is_none() {
            self.came_back = Some(true);
        }
    }

    fn result(&self) -> Option<Hairpin> {
        self.came_back.map(|came_back| Hairpin {
            local: self.local,
            to: self.to,
            came_back,
        })
    }
}

/// One planned Binding exchange of the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Index of the server tested.
    pub server: usize,
    /// Which test.
    pub test: TestLabel,
    /// The socket it is sent from.
    pub socket: SocketId,
    /// Where it is sent.
    pub to: SocketAddr,
    /// Its CHANGE-REQUEST.
    pub change: Change,
}

/// What the sequence does after the exchanges it has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run this Binding exchange.
    Test(Step),
    /// Run the hairpin test from `socket` to our mapped address `to`.
    Hairpin {
        /// The socket whose mapping is tested (the multi-server socket).
        socket: SocketId,
        /// Its mapped address, as the first server of the comparison to answer saw it.
        to: SocketAddr,
    },
    /// Nothing more to run.
    End,
}

/// An exchange that has ended, in the order they ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// Index of the server tested.
    pub server: usize,
    /// Which test.
    pub test: TestLabel,
    /// What was observed.
    pub exchange: Exchange,
}

/// OTHER-ADDRESS of a reply (RFC 5780 §7.4).
fn other_address(e: &Exchange) -> Option<SocketAddr> {
    match &e.answer {
        Answer::Reply { other_address, .. } => *other_address,
        _ => None,
    }
}

/// The next step of the sequence (pure): a function of the servers, the sockets the driver
/// could bind, and the exchanges finished so far (the last one says where we are). The hairpin
/// test is not in `done`; after it, the sequence ends without asking.
pub fn next_step(
    servers: &[SocketAddr],
    bound: &dyn Fn(SocketId) -> bool,
    done: &[Finished],
) -> Next {
    use TestLabel as L;
    let test = |server: usize, test, socket, to, change| {
        Next::Test(Step {
            server,
            test,
            socket,
            to,
            change,
        })
    };
    // The RFC 5780 tests of the first server, from `from` on, whose filtering socket exists
    // (without one the server is not tested at all); after the last, the comparison.
    let from_server =
        |from: usize| match (from..servers.len()).find(|&i| bound(SocketId::Filtering(i))) {
            Some(i) => test(
                i,
                L::FilteringI,
                SocketId::Filtering(i),
                servers[i],
                Change::None,
            ),
            None if !servers.is_empty() && bound(SocketId::Multi) => {
                test(0, L::Multi, SocketId::Multi, servers[0], Change::None)
            }
            None => Next::End,
        };
    let Some(last) = done.last() else {
        return from_server(0);
    };
    let i = last.server;
    let primary = servers[i];
    // The alternate address comes from filtering test I's reply: the mapping tests need it,
    // and a server without it is not an RFC 5780 server.
    let other = done
        .iter()
        .find(|f| f.server == i && f.test == L::FilteringI)
        .and_then(|f| other_address(&f.exchange));
    match (last.test, other) {
        // No OTHER-ADDRESS in filtering test I's reply: not an RFC 5780 server. Its Binding
        // still counts in the comparison; its RFC 5780 tests stay not run. (Only test I can
        // be the last one without it; the others ran because it was there.)
        (L::FilteringI | L::FilteringII | L::MappingI | L::MappingII, None) => from_server(i + 1),
        // §4.4 test II: change IP and port; test III: change port only.
        (L::FilteringI, Some(_)) => test(
            i,
            L::FilteringII,
            SocketId::Filtering(i),
            primary,
            Change::IpAndPort,
        ),
        (L::FilteringII, Some(_)) => test(
            i,
            L::FilteringIII,
            SocketId::Filtering(i),
            primary,
            Change::Port,
        ),
        // §4.3 test I to the primary, II to the alternate IP with the primary port, III to
        // the alternate address.
        (L::FilteringIII, _) if bound(SocketId::Mapping(i)) => {
            test(i, L::MappingI, SocketId::Mapping(i), primary, Change::None)
        }
        (L::MappingI, Some(o)) => test(
            i,
            L::MappingII,
            SocketId::Mapping(i),
            SocketAddr::new(o.ip(), primary.port()),
            Change::None,
        ),
        (L::MappingII, Some(o)) => test(i, L::MappingIII, SocketId::Mapping(i), o, Change::None),
        (L::FilteringIII | L::MappingIII, _) => from_server(i + 1),
        (L::Multi, _) if i + 1 < servers.len() => test(
            i + 1,
            L::Multi,
            SocketId::Multi,
            servers[i + 1],
            Change::None,
        ),
        (L::Multi, _) => match done
            .iter()
            .filter(|f| f.test == L::Multi)
            .find_map(|f| f.exchange.answer.mapped())
        {
            Some(to) => Next::Hairpin {
                socket: SocketId::Multi,
                to,
            },
            None => Next::End,
        },
    }
}

/// The observations the finished exchanges make (pure). A server whose filtering socket could
/// not be bound has no RFC 5780 entry; a server without OTHER-ADDRESS has one with neither
/// filtering nor mapping tests.
fn observations(target: &Target, done: &[Finished], hairpin: Option<Hairpin>) -> Observations {
    use TestLabel as L;
    let tests = |server: usize, labels: [TestLabel; 3]| {
        labels
            .iter()
            .map(|&l| {
                done.iter()
                    .find(|f| f.server == server && f.test == l)
                    .map(|f| f.exchange.clone())
            })
            .collect::<Option<Vec<_>>>()
    };
    let rfc5780 = target
        .servers
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            done.iter()
                .any(|f| f.server == *i && f.test == L::FilteringI)
        })
        .map(|(i, (url, primary))| Rfc5780 {
            url: url.to_string(),
            primary: *primary,
            filtering: tests(i, [L::FilteringI, L::FilteringII, L::FilteringIII]),
            mapping: tests(i, [L::MappingI, L::MappingII, L::MappingIII]),
        })
        .collect();
    Observations {
        family: target.family.clone(),
        local_addresses: target.local_addresses.clone(),
        rfc5780,
        multi: done
            .iter()
            .filter(|f| f.test == L::Multi)
            .map(|f| f.exchange.clone())
            .collect(),
        hairpin,
        lifetime: None,
        tcp_fallback: None,
    }
}

/// The test that is running.
#[derive(Debug)]
enum Running {
    // Boxed: a Binding transaction is large, and most of the time it is the one running.
    Test(Step, Box<BindingTest>),
    Hairpin(SocketId, HairpinTest),
    Ended,
}

/// The RFC 5780 sequence of one address family as a sans-IO machine. Time is passed in; it never
/// opens a socket or reads the clock. One test runs at a time, in the order of [`next_step`].
#[derive(Debug)]
pub struct Sequence {
    target: Target,
    settings: Settings,
    bound: BTreeMap<SocketId, SocketAddr>,
    done: Vec<Finished>,
    running: Running,
    events: VecDeque<SequenceEvent>,
}

impl Sequence {
    /// The sockets a sequence over `servers` servers may use, for the driver to bind before
    /// [`new`](Self::new): a filtering and a mapping socket per server, then the multi-server
    /// socket. Binding them all up front changes nothing the tests observe: a NAT creates a
    /// mapping only when a socket sends (RFC 4787 §4), so a bound socket that has not sent is
    /// as fresh as one bound a moment before its first test.
    pub fn sockets(servers: usize) -> Vec<SocketId> {
        (0..servers)
            .flat_map(|i| [SocketId::Filtering(i), SocketId::Mapping(i)])
            .chain([SocketId::Multi])
            .collect()
    }

    /// Start at `now`. `bound` holds the local address of every socket the driver could bind;
    /// the tests of a socket missing from it are not run (and the exchanges that depend on them
    /// are skipped as today: no filtering socket, no tests of that server).
    pub fn new(
        now: Instant,
        target: Target,
        settings: Settings,
        bound: BTreeMap<SocketId, SocketAddr>,
    ) -> Self {
        let mut s = Sequence {
            target,
            settings,
            bound,
            done: vec![],
            running: Running::Ended,
            events: VecDeque::new(),
        };
        s.start(now, s.next());
        s
    }

    fn next(&self) -> Next {
        let servers: Vec<SocketAddr> = self.target.servers.iter().map(|s| s.1).collect();
        next_step(&servers, &|id| self.bound.contains_key(&id), &self.done)
    }

    fn start(&mut self, now: Instant, next: Next) {
        let local = |id: SocketId| self.bound.get(&id).copied();
        self.running = match next {
            Next::Test(step) => match local(step.socket) {
                Some(l) => Running::Test(
                    step,
                    Box::new(BindingTest::new(
                        now,
                        l,
                        step.to,
                        step.change,
                        None,
                        &self.settings,
                    )),
                ),
                None => Running::Ended,
            },
            Next::Hairpin { socket, to } => match local(socket) {
                Some(l) => Running::Hairpin(socket, HairpinTest::new(now, l, to, &self.settings)),
                None => Running::Ended,
            },
            Next::End => Running::Ended,
        };
        if matches!(self.running, Running::Ended) {
            self.finish(None);
        }
    }

    fn finish(&mut self, hairpin: Option<Hairpin>) {
        self.running = Running::Ended;
        let o = observations(&self.target, &self.done, hairpin);
        self.events.push_back(SequenceEvent::Done(o));
    }

    /// After input or time: when the running test has ended, record it and start the next.
    fn advance(&mut self, now: Instant) {
        match &self.running {
            Running::Test(step, t) => {
                let (step, Some(exchange)) = (*step, t.result()) else {
                    return;
                };
                self.events.push_back(SequenceEvent::Exchange {
                    server: self.target.servers[step.server].0.clone(),
                    test: step.test,
                    exchange: exchange.clone(),
                });
                self.done.push(Finished {
                    server: step.server,
                    test: step.test,
                    exchange,
                });
                self.start(now, self.next());
            }
            Running::Hairpin(_, h) => {
                if let Some(h) = h.result() {
                    self.finish(Some(h));
                }
            }
            Running::Ended => {}
        }
    }

    /// A datagram arrived on `socket` from `from`. Only the running test's socket is listened
    /// to: anything else is a late answer to a test that has ended, and changes nothing.
    pub fn handle_input(&mut self, now: Instant, socket: SocketId, from: SocketAddr, bytes: &[u8]) {
        match &mut self.running {
            Running::Test(step, t) if step.socket == socket => t.handle_input(now, from, bytes),
            Running::Hairpin(s, h) if *s == socket => h.handle_input(bytes),
            _ => return,
        }
        self.advance(now);
    }

    /// Time passed: retransmit, or end the running test when its time is up.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.running {
            Running::Test(_, t) => t.handle_timeout(now),
            Running::Hairpin(_, h) => h.handle_timeout(now),
            Running::Ended => return,
        }
        self.advance(now);
    }

    /// A datagram to send now: from which socket, to where, and the bytes.
    pub fn poll_transmit(&mut self) -> Option<(SocketId, SocketAddr, Vec<u8>)> {
        match &mut self.running {
            Running::Test(step, t) => t.poll_transmit().map(|b| (step.socket, step.to, b)),
            Running::Hairpin(s, h) => h.outbox.take().map(|b| (*s, h.to, b)),
            Running::Ended => None,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called. `None` once the
    /// sequence has ended, and then its [`SequenceEvent::Done`] is queued.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.running {
            Running::Test(_, t) => Some(t.poll_timeout()),
            Running::Hairpin(_, h) => Some(h.poll_timeout()),
            Running::Ended => None,
        }
    }

    /// The next event: an exchange that ended, and finally the observations.
    pub fn poll_event(&mut self) -> Option<SequenceEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick an arbitrary t0
mod tests {
    use super::*;
    use crate::proto::binding::tests::success;
    use TestLabel as L;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const P0: &str = "198.51.100.1:3478";
    const O0: &str = "198.51.100.2:3479";
    const P1: &str = "192.0.2.50:19302";
    const LOCAL: &str = "192.168.1.10:5000";

    /// A finished exchange of server `server` answered with `mapped` and `other`.
    fn reply(
        server: usize,
        test: TestLabel,
        mapped: Option<&str>,
        other: Option<&str>,
    ) -> Finished {
        Finished {
            server,
            test,
            exchange: Exchange {
                local: sa(LOCAL),
                to: sa(P0),
                change: Change::None,
                answer: match mapped {
                    Some(m) => Answer::Reply {
                        from: sa(P0),
                        mapped: Some(sa(m)),
                        plain_mapped: None,
                        response_origin: None,
                        other_address: other.map(sa),
                        rtt_ms: 1.0,
                    },
                    None => Answer::Timeout,
                },
            },
        }
    }

    fn step(server: usize, test: TestLabel, socket: SocketId, to: &str, change: Change) -> Next {
        Next::Test(Step {
            server,
            test,
            socket,
            to: sa(to),
            change,
        })
    }

    /// A row: name, servers, which sockets are bound, the exchanges finished, the next step.
    type Row<'a> = (
        &'a str,
        &'a [SocketAddr],
        &'a dyn Fn(SocketId) -> bool,
        Vec<Finished>,
        Next,
    );

    /// The whole decision table: after these exchanges, with these sockets bound, this next.
    #[test]
    fn next_step_table() {
        use Change as C;
        use SocketId::{Filtering as Fs, Mapping as Ms, Multi};
        let ok = |_: SocketId| true;
        let no_f0 = |s: SocketId| s != Fs(0);
        let no_m0 = |s: SocketId| s != Ms(0);
        let only_multi = |s: SocketId| s == Multi;
        let nothing = |_: SocketId| false;
        let m = Some("203.0.113.7:40001");
        let o = Some(O0);
        let f1 = reply(0, L::FilteringI, m, o);
        let two = [sa(P0), sa(P1)];
        let one = [sa(P0)];
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            ("start: filtering I", &two, &ok, vec![], step(0, L::FilteringI, Fs(0), P0, C::None)),
            ("no filtering socket: next server", &two, &no_f0, vec![], step(1, L::FilteringI, Fs(1), P1, C::None)),
            ("no filtering sockets: comparison", &two, &only_multi, vec![], step(0, L::Multi, Multi, P0, C::None)),
            ("no sockets at all", &two, &nothing, vec![], Next::End),
            ("no servers", &[], &ok, vec![], Next::End),
            ("no OTHER-ADDRESS: next server", &two, &ok, vec![reply(0, L::FilteringI, m, None)], step(1, L::FilteringI, Fs(1), P1, C::None)),
            ("silent: next server", &two, &ok, vec![reply(0, L::FilteringI, None, None)], step(1, L::FilteringI, Fs(1), P1, C::None)),
            ("§4.4 test II: change IP and port", &two, &ok, vec![f1.clone()], step(0, L::FilteringII, Fs(0), P0, C::IpAndPort)),
            ("§4.4 test III: change port", &two, &ok,
                vec![f1.clone(), reply(0, L::FilteringII, None, None)], step(0, L::FilteringIII, Fs(0), P0, C::Port)),
            ("§4.3 test I on the mapping socket", &two, &ok,
                vec![f1.clone(), reply(0, L::FilteringII, None, None), reply(0, L::FilteringIII, None, None)],
                step(0, L::MappingI, Ms(0), P0, C::None)),
            ("no mapping socket: next server", &two, &no_m0,
                vec![f1.clone(), reply(0, L::FilteringII, None, None), reply(0, L::FilteringIII, None, None)],
                step(1, L::FilteringI, Fs(1), P1, C::None)),
            // OTHER-ADDRESS is filtering test I's, whatever mapping test I's reply says.
            ("§4.3 test II: alternate IP, primary port", &two, &ok,
                vec![f1.clone(), reply(0, L::MappingI, m, Some("198.51.100.99:1"))],
                step(0, L::MappingII, Ms(0), "198.51.100.2:3478", C::None)),
            ("§4.3 test III: alternate address", &two, &ok,
                vec![f1.clone(), reply(0, L::MappingII, m, None)], step(0, L::MappingIII, Ms(0), O0, C::None)),
            ("after the last server's tests: comparison", &two, &ok,
                vec![reply(1, L::FilteringI, m, None)], step(0, L::Multi, Multi, P0, C::None)),
            ("after mapping III of the last server: comparison", &one, &ok,
                vec![f1.clone(), reply(0, L::MappingIII, m, None)], step(0, L::Multi, Multi, P0, C::None)),
            ("comparison: every server from one socket", &two, &ok,
                vec![reply(0, L::Multi, None, None)], step(1, L::Multi, Multi, P1, C::None)),
            ("hairpin to the first mapped address seen", &two, &ok,
                vec![reply(0, L::Multi, None, None), reply(1, L::Multi, Some("203.0.113.7:40009"), None)],
                Next::Hairpin { socket: Multi, to: sa("203.0.113.7:40009") }),
            ("no mapped address: no hairpin", &two, &ok,
                vec![reply(0, L::Multi, None, None), reply(1, L::Multi, None, None)], Next::End),
        ];
        for (name, servers, bound, done, want) in table {
            assert_eq!(next_step(servers, bound, &done), want, "{name}");
        }
    }

    fn settings(t0: Instant) -> Settings {
        Settings {
            rto: Duration::from_millis(100),
            test_timeout: Duration::from_millis(1000),
            deadline: t0 + Duration::from_secs(60),
        }
    }

    fn txid_sent(t: &mut BindingTest) -> TxId {
        let req = t.poll_transmit().expect("first transmission at once");
        stun::txid_of(&req).unwrap()
    }

    #[test]
    fn a_stray_answer_is_not_a_reject_and_garbage_is() {
        let t0 = Instant::now();
        let s = settings(t0);
        let (local, server) = (sa(LOCAL), sa(P0));
        // The answer to an earlier test on the same socket, then silence: a timeout.
        let mut t = BindingTest::new(t0, local, server, Change::Port, None, &s);
        txid_sent(&mut t);
        t.handle_input(t0, server, &success(stun::new_txid(), sa("203.0.113.7:1")));
        t.handle_timeout(t0 + s.test_timeout);
        assert_eq!(t.result().unwrap().answer, Answer::Timeout);
        // Bytes that are not STUN: a rejected answer, not silence.
        let mut t = BindingTest::new(t0, local, server, Change::Port, None, &s);
        t.handle_input(t0, server, b"not a STUN message at all");
        t.handle_timeout(t0 + s.test_timeout);
        assert!(
            matches!(t.result().unwrap().answer, Answer::Rejected { .. }),
            "{:?}",
            t.result()
        );
    }

    #[test]
    fn the_reply_records_where_it_came_from() {
        let t0 = Instant::now();
        let mut t = BindingTest::new(
            t0,
            sa(LOCAL),
            sa(P0),
            Change::IpAndPort,
            None,
            &settings(t0),
        );
        let id = txid_sent(&mut t);
        let from = sa("198.51.100.2:3479");
        t.handle_input(
            t0 + Duration::from_millis(30),
            from,
            &success(id, sa("203.0.113.7:1")),
        );
        let e = t.result().unwrap();
        assert_eq!(
            (e.local, e.to, e.change),
            (sa(LOCAL), sa(P0), Change::IpAndPort)
        );
        match e.answer {
            Answer::Reply {
                from: f, rtt_ms, ..
            } => {
                assert_eq!(f, from);
                assert_eq!(rtt_ms, 30.0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn past_the_deadline_a_test_sends_once_and_ends() {
        let t0 = Instant::now();
        let s = Settings {
            deadline: t0,
            ..settings(t0)
        };
        let mut t = BindingTest::new(t0, sa(LOCAL), sa(P0), Change::None, None, &s);
        txid_sent(&mut t);
        assert_eq!(t.poll_timeout(), t0);
        t.handle_timeout(t0);
        assert_eq!(t.result().unwrap().answer, Answer::Timeout);
        assert!(t.poll_transmit().is_none());
    }

    fn one_server(t0: Instant) -> Sequence {
        let target = Target {
            family: "ipv4".into(),
            local_addresses: vec![],
            servers: vec![(format!("stun:{P0}").parse().unwrap(), sa(P0))],
        };
        let bound = Sequence::sockets(1)
            .into_iter()
            .zip(5001u16..)
            .map(|(id, port)| (id, SocketAddr::new(sa(LOCAL).ip(), port)))
            .collect();
        Sequence::new(t0, target, settings(t0), bound)
    }

    #[test]
    fn only_the_running_tests_socket_is_listened_to() {
        let t0 = Instant::now();
        let mut seq = one_server(t0);
        let (socket, to, req) = seq.poll_transmit().unwrap();
        assert_eq!((socket, to), (SocketId::Filtering(0), sa(P0)));
        let answer = success(stun::txid_of(&req).unwrap(), sa("203.0.113.7:1"));
        // The right transaction on the wrong socket: not this test's answer.
        seq.handle_input(t0, SocketId::Mapping(0), sa(P0), &answer);
        assert_eq!(seq.poll_event(), None);
        seq.handle_input(t0, SocketId::Filtering(0), sa(P0), &answer);
        assert!(matches!(
            seq.poll_event(),
            Some(SequenceEvent::Exchange {
                test: L::FilteringI,
                ..
            })
        ));
    }

    #[test]
    fn silence_everywhere_ends_with_every_test_recorded() {
        let t0 = Instant::now();
        let mut seq = one_server(t0);
        let mut labels = vec![];
        let done = loop {
            while seq.poll_transmit().is_some() {}
            match seq.poll_event() {
                Some(SequenceEvent::Exchange { test, .. }) => labels.push(test),
                Some(SequenceEvent::Done(o)) => break o,
                None => seq.handle_timeout(seq.poll_timeout().unwrap()),
            }
        };
        assert_eq!(seq.poll_timeout(), None);
        // No reply, so no OTHER-ADDRESS: only filtering test I of the RFC 5780 tests ran.
        assert_eq!(labels, [L::FilteringI, L::Multi]);
        assert_eq!(done.rfc5780.len(), 1);
        assert_eq!(done.rfc5780[0].filtering, None);
        assert_eq!(done.multi.len(), 1);
        assert_eq!(done.hairpin, None, "no mapped address to hairpin to");
    }
}
