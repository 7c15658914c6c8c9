//! Running the NAT tests against real servers and recording what happened (the I/O edge; the
//! interpretation is `nat::classify`, a pure function of these observations).
//!
//! The order of the tests and what each answer records is the sans-IO [`Sequence`]
//! (`nat::sequence`); this driver binds its sockets, moves its datagrams, keeps its timers on
//! the real clock and streams its events. The idle lifetime search (RFC 5780 §4.6) and the TCP
//! fallback stay here: they are about idle time and TCP, not the sequence's exchanges.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::sequence::{BindingTest, Sequence, SequenceEvent, Settings, SocketId, Target};
use crate::ice_url::ServerUrl;
use crate::model::nat::*;
use crate::model::nat::{NatExchange, TestLabel};
use crate::net::dns::{self, Families};
use crate::net::driver::cancelled;
use crate::net::ifaces::{self, HostFilter};
use crate::proto::binding::{Binding, BindingOutcome};
use crate::proto::stun::{self, Class};

/// Settings of a discovery run.
#[derive(Debug, Clone)]
pub struct NatConfig {
    /// STUN servers (any scheme; reached over UDP at host:port).
    pub servers: Vec<ServerUrl>,
    /// Address families to examine, each separately.
    pub families: Families,
    /// Deadline for the whole run (the lifetime search has its own budget on top).
    pub timeout: Duration,
    /// Initial retransmission timeout.
    pub rto: Duration,
    /// How long one test waits for its answer (a missing answer is itself a result).
    pub test_timeout: Duration,
    /// Search the idle mapping lifetime within this budget.
    pub lifetime: Option<Duration>,
}

/// Where exchanges go as they happen (live output), stamped with the run's clock.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The event stream.
    pub tx: mpsc::UnboundedSender<NatExchange>,
    /// When the run started.
    pub t0: Instant,
}

impl Progress {
    fn send(&self, family: &str, server: &ServerUrl, test: TestLabel, exchange: &Exchange) {
        let _ = self.tx.send(NatExchange {
            family: family.to_string(),
            server: server.to_string(),
            test,
            elapsed_ms: crate::model::ms(self.t0.elapsed()),
            exchange: exchange.clone(),
        });
    }
}

/// The any-address of the family (`v4`: IPv4), port 0.
fn any(v4: bool) -> SocketAddr {
    let ip = if v4 {
        IpAddr::from(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::from(Ipv6Addr::UNSPECIFIED)
    };
    crate::net::any_addr(ip)
}

/// One Binding exchange on `sock`: send to `to` (with CHANGE-REQUEST / RESPONSE-PORT), wait up
/// to `timeout` (and never past `deadline`) for the response with our transaction id, from
/// wherever it comes — the caller validates the source. The same [`BindingTest`] the
/// [`Sequence`] runs, on one socket of its own.
pub async fn exchange(
    sock: &UdpSocket,
    to: SocketAddr,
    change: Change,
    response_port: Option<u16>,
    rto: Duration,
    timeout: Duration,
    deadline: Instant,
) -> Exchange {
    let local = sock.local_addr().unwrap_or(any(to.is_ipv4()));
    let settings = Settings {
        rto,
        test_timeout: timeout,
        deadline,
    };
    let mut t = BindingTest::new(Instant::now(), local, to, change, response_port, &settings);
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(b) = t.poll_transmit() {
            let _ = sock.send_to(&b, to).await;
        }
        if let Some(e) = t.result() {
            return e;
        }
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, src)) = r {
                    t.handle_input(Instant::now(), src, &buf[..n]);
                }
            }
            _ = tokio::time::sleep_until(t.poll_timeout().into()) => {
                t.handle_timeout(Instant::now());
            }
        }
    }
}

/// The next datagram on any of `socks`: which socket, its length in `buf`, and its source. The
/// sockets are polled from a rotating start so that a busy one cannot starve the others.
async fn recv_any(
    socks: &[(SocketId, UdpSocket)],
    buf: &mut [u8],
    turn: &mut usize,
) -> io::Result<(SocketId, usize, SocketAddr)> {
    let first = *turn;
    *turn = turn.wrapping_add(1);
    std::future::poll_fn(|cx| {
        for k in 0..socks.len() {
            let (id, sock) = &socks[(first + k) % socks.len()];
            let mut rb = ReadBuf::new(buf);
            if let Poll::Ready(r) = sock.poll_recv_from(cx, &mut rb) {
                return Poll::Ready(r.map(|from| (*id, rb.filled().len(), from)));
            }
        }
        Poll::Pending
    })
    .await
}

/// Drive `seq` over the real sockets until it ends: its transmissions sent, datagrams from
/// every socket fed in, its timers kept, and each ended exchange streamed as it happens.
async fn run_sequence(
    seq: &mut Sequence,
    socks: &[(SocketId, UdpSocket)],
    family: &str,
    progress: &Progress,
) -> Option<Observations> {
    let mut buf = vec![0u8; 2048];
    let mut turn = 0;
    loop {
        // Events first: an exchange is streamed the moment it ends, before the next one sends.
        while let Some(e) = seq.poll_event() {
            match e {
                SequenceEvent::Exchange {
                    server,
                    test,
                    exchange,
                } => progress.send(family, &server, test, &exchange),
                SequenceEvent::Done(o) => return Some(o),
            }
        }
        while let Some((id, to, bytes)) = seq.poll_transmit() {
            if let Some((_, sock)) = socks.iter().find(|(s, _)| *s == id) {
                let _ = sock.send_to(&bytes, to).await;
            }
        }
        // A sequence without a timer has ended and queued `Done`, returned above.
        let wake = seq.poll_timeout()?;
        tokio::select! {
            r = recv_any(socks, &mut buf, &mut turn) => {
                if let Ok((id, n, from)) = r {
                    seq.handle_input(Instant::now(), id, from, &buf[..n]);
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => seq.handle_timeout(Instant::now()),
        }
    }
}

/// Binding over TCP to `addr`: does STUN work at all when UDP does not?
async fn tcp_binding(addr: SocketAddr, deadline: Instant) -> bool {
    use crate::net::driver::{drive, Link, Stop};
    use crate::net::stream::{self as stream, StreamLink};
    let Ok(tcp) = stream::connect(addr, deadline.into()).await else {
        return false;
    };
    let mut link = Link::Stream(StreamLink::new(Box::new(tcp), addr));
    let mut b = Binding::new(Instant::now(), Duration::from_millis(500), true);
    let (_keep, mut never) = watch::channel(false);
    let mut ok = false;
    let stop = drive(&mut link, &mut b, deadline, &mut never, |_, o, _| {
        ok = matches!(o, BindingOutcome::Success { .. });
        true
    })
    .await;
    link.close().await;
    ok && matches!(stop, Stop::Done)
}

/// Run every test for one family: the [`Sequence`] over real sockets, then the TCP fallback and
/// the lifetime search, which are about TCP and idle time rather than the sequence's exchanges.
async fn discover_family(
    cfg: &NatConfig,
    v4: bool,
    progress: &Progress,
    deadline: Instant,
) -> Option<Observations> {
    let fam = Families { v4, v6: !v4 };
    let mut servers: Vec<(ServerUrl, SocketAddr)> = vec![];
    for url in &cfg.servers {
        if let Ok(addrs) = dns::resolve(url, fam, deadline.into()).await {
            if let Some(a) = addrs.first() {
                if !servers.iter().any(|(_, s)| s == a) {
                    servers.push((url.clone(), *a));
                }
            }
        }
    }
    if servers.is_empty() {
        return None;
    }
    let local_addresses = ifaces::local_addresses(&HostFilter {
        families: fam,
        loopback: true,
        link_local: true,
    })
    .map(|l| l.into_iter().map(|a| a.ip).collect())
    .unwrap_or_default();
    let family = if v4 { "ipv4" } else { "ipv6" };

    // Every socket the sequence may use, bound up front (a NAT maps only on send, so an idle
    // bound socket is still fresh; see `Sequence::sockets`). One that cannot be bound is left
    // out, and the sequence skips its tests.
    let mut socks = vec![];
    let mut bound = BTreeMap::new();
    for id in Sequence::sockets(servers.len()) {
        if let Ok(sock) = UdpSocket::bind(any(v4)).await {
            bound.insert(id, sock.local_addr().unwrap_or(any(v4)));
            socks.push((id, sock));
        }
    }
    let target = Target {
        family: family.into(),
        local_addresses,
        servers: servers.clone(),
    };
    let settings = Settings {
        rto: cfg.rto,
        test_timeout: cfg.test_timeout,
        deadline,
    };
    let mut seq = Sequence::new(Instant::now(), target, settings, bound);
    let observed = run_sequence(&mut seq, &socks, family, progress).await?;
    drop(socks);

    // Nothing answered over UDP: does TCP work?
    let udp_silent = observed
        .multi
        .iter()
        .all(|e| matches!(e.answer, Answer::Timeout));
    let tcp_fallback = if udp_silent {
        Some(tcp_binding(servers[0].1, deadline).await)
    } else {
        None
    };

    let lifetime = match cfg.lifetime {
        Some(budget) if !udp_silent => Some(lifetime_search(cfg, servers[0].1, v4, budget).await),
        _ => None,
    };

    Some(Observations {
        lifetime,
        tcp_fallback,
        ..observed
    })
}

/// Is a mapping still alive after `idle`? Socket X makes a mapping and goes quiet; then socket Y
/// asks the server to answer to X's mapped port (RESPONSE-PORT, RFC 5780 §4.6 / §7.5). The
/// answer reaches X only while X's mapping lives.
async fn alive_after(
    cfg: &NatConfig,
    server: SocketAddr,
    v4: bool,
    idle: Duration,
) -> Option<bool> {
    let x = UdpSocket::bind(any(v4)).await.ok()?;
    let y = UdpSocket::bind(any(v4)).await.ok()?;
    let far = Instant::now() + Duration::from_secs(3600);
    let first = exchange(
        &x,
        server,
        Change::None,
        None,
        cfg.rto,
        cfg.test_timeout,
        far,
    )
    .await;
    let x_mapped = first.answer.mapped()?;
    tokio::time::sleep(idle).await;
    let txid = stun::new_txid();
    let req = stun::binding_request_with(txid, 0, Some(x_mapped.port()));
    let end = Instant::now() + cfg.test_timeout;
    let mut buf = vec![0u8; 2048];
    let mut ybuf = vec![0u8; 2048];
    let mut next = Instant::now();
    let mut interval = cfg.rto;
    loop {
        if Instant::now() >= next {
            let _ = y.send_to(&req, server).await;
            next = Instant::now() + interval;
            interval *= 2;
        }
        tokio::select! {
            r = x.recv_from(&mut buf) => {
                if let Ok((n, _)) = r {
                    if stun::txid_of(&buf[..n]) == Some(txid) {
                        return Some(true);
                    }
                }
            }
            r = y.recv_from(&mut ybuf) => {
                // A 420 error to Y means the server does not know RESPONSE-PORT: no result.
                if let Ok((n, _)) = r {
                    if let Ok(d) = stun::decode(&ybuf[..n]) {
                        if d.txid == txid && d.class == Some(Class::Error) {
                            return None;
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(next.min(end).into()) => {
                if Instant::now() >= end {
                    return Some(false);
                }
            }
        }
    }
}

/// Bounded search for the idle lifetime: double the idle time until the mapping dies, then
/// bisect, never spending more than `budget` idling.
async fn lifetime_search(
    cfg: &NatConfig,
    server: SocketAddr,
    v4: bool,
    budget: Duration,
) -> Lifetime {
    let started = Instant::now();
    let mut alive: Option<Duration> = None;
    let mut dead: Option<Duration> = None;
    let mut idle = Duration::from_secs(2);
    let mut exhausted = false;
    loop {
        if started.elapsed() + idle > budget {
            exhausted = true;
            break;
        }
        match alive_after(cfg, server, v4, idle).await {
            Some(true) => alive = Some(idle),
            Some(false) => dead = Some(idle),
            None => break,
        }
        idle = match (alive, dead) {
            (_, None) => idle * 2,
            (None, Some(d)) => d / 2,
            (Some(a), Some(d)) if d.saturating_sub(a) <= (d / 10).max(Duration::from_secs(1)) => {
                break
            }
            (Some(a), Some(d)) => (a + d) / 2,
        };
        if idle < Duration::from_millis(500) {
            break;
        }
    }
    Lifetime {
        alive_after_s: alive.map(|d| d.as_secs_f64()),
        expired_after_s: dead.map(|d| d.as_secs_f64()),
        budget_exhausted: exhausted,
    }
}

/// Run discovery for every requested family. Families without a server are skipped.
pub async fn discover(
    cfg: &NatConfig,
    progress: Progress,
    cancel: watch::Receiver<bool>,
) -> Vec<Observations> {
    let deadline = Instant::now() + cfg.timeout;
    let mut cancel = cancel;
    let work = async {
        let mut out = vec![];
        for v4 in [true, false] {
            if (v4 && cfg.families.v4) || (!v4 && cfg.families.v6) {
                if let Some(o) = discover_family(cfg, v4, &progress, deadline).await {
                    out.push(o);
                }
            }
        }
        out
    };
    tokio::select! {
        out = work => out,
        _ = cancelled(&mut cancel) => vec![],
    }
}
