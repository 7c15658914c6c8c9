//! Running the NAT tests against real servers and recording what happened (the I/O edge; the
//! interpretation is `nat::classify`, a pure function of these observations).
//!
//! Order matters (RFC 5780 §4.4): the filtering tests run first, each server on a fresh
//! socket, so that nothing the mapping tests send can open the NAT for them.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

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
            elapsed_ms: self.t0.elapsed().as_secs_f64() * 1000.0,
            exchange: exchange.clone(),
        });
    }
}

fn any(family_v4: bool) -> SocketAddr {
    if family_v4 {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    }
}

/// One Binding exchange on `sock`: send to `to` (with CHANGE-REQUEST / RESPONSE-PORT), wait up
/// to `timeout` (and never past `deadline`) for the response with our transaction id, from
/// wherever it comes — the caller validates the source.
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
    let flags = match change {
        Change::None => 0,
        Change::Port => stun::CHANGE_PORT,
        Change::IpAndPort => stun::CHANGE_IP | stun::CHANGE_PORT,
    };
    let txid = stun::new_txid();
    let started = Instant::now();
    let end = deadline.min(started + timeout);
    let mut b = Binding::with_request(
        started,
        rto,
        false,
        txid,
        Some(stun::binding_request_with(txid, flags, response_port)),
    );
    let mut from = None;
    let mut buf = vec![0u8; 2048];
    let answer = loop {
        while let Some(t) = b.poll_transmit() {
            let _ = sock.send_to(&t, to).await;
        }
        if let Some(o) = b.outcome() {
            break o.clone();
        }
        let wake = b.poll_timeout().map_or(end, |t| t.min(end));
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, src)) = r {
                    // Answers to earlier tests on this socket are expected strays, not
                    // rejects; everything else the Binding machine judges (and logs).
                    let stray = stun::txid_of(&buf[..n]).is_some_and(|id| id != txid);
                    if !stray && b.handle_bytes(Instant::now(), &buf[..n]) {
                        from = Some(src);
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                if Instant::now() >= end {
                    b.abandon();
                } else {
                    b.handle_timeout(Instant::now());
                }
            }
        }
    };
    let answer = match (answer, from) {
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
            // XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS from an RFC 3489 server), and MAPPED-ADDRESS
            // on its own so the classifier can spot an ALG rewriting only the plain one.
            mapped: Some(mapped),
            plain_mapped,
            response_origin,
            other_address,
            rtt_ms: rtt.as_secs_f64() * 1000.0,
        },
        (BindingOutcome::Error(e), _) => Answer::Error {
            code: e.code,
            reason: e.reason,
        },
        _ => match b.rejects().summary() {
            Some(why) => Answer::Rejected { why },
            None => Answer::Timeout,
        },
    };
    Exchange {
        local,
        to,
        change,
        answer,
    }
}

/// Send a Binding request to our own mapped address and see whether it comes back through
/// the NAT (RFC 5780 §4.5).
async fn hairpin(
    sock: &UdpSocket,
    mapped: SocketAddr,
    rto: Duration,
    timeout: Duration,
) -> Hairpin {
    let local = sock.local_addr().unwrap_or(any(mapped.is_ipv4()));
    let txid = stun::new_txid();
    let req = stun::binding_request(txid);
    let end = Instant::now() + timeout;
    let mut next_send = Instant::now();
    let mut interval = rto;
    let mut buf = vec![0u8; 2048];
    loop {
        if Instant::now() >= next_send {
            let _ = sock.send_to(&req, mapped).await;
            next_send = Instant::now() + interval;
            interval *= 2;
        }
        let wake = next_send.min(end);
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, _)) = r {
                    if stun::txid_of(&buf[..n]) == Some(txid) && stun::decode(&buf[..n]).map(|d| d.class == Some(Class::Request)).unwrap_or(false) {
                        return Hairpin { local, to: mapped, came_back: true };
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                if Instant::now() >= end {
                    return Hairpin { local, to: mapped, came_back: false };
                }
            }
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

/// [`exchange`] with the run's timing settings.
async fn ex(
    cfg: &NatConfig,
    sock: &UdpSocket,
    to: SocketAddr,
    change: Change,
    deadline: Instant,
) -> Exchange {
    exchange(sock, to, change, None, cfg.rto, cfg.test_timeout, deadline).await
}

/// Run every test for one family.
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

    // RFC 5780 filtering, then mapping, per server, each on fresh sockets.
    let mut rfc5780 = vec![];
    for (url, primary) in &servers {
        let Ok(fsock) = UdpSocket::bind(any(v4)).await else {
            continue;
        };
        let t1 = ex(cfg, &fsock, *primary, Change::None, deadline).await;
        progress.send(family, url, TestLabel::FilteringI, &t1);
        let other = match &t1.answer {
            Answer::Reply { other_address, .. } => *other_address,
            _ => None,
        };
        let mut entry = Rfc5780 {
            url: url.to_string(),
            primary: *primary,
            filtering: None,
            mapping: None,
        };
        let Some(other) = other else {
            // No OTHER-ADDRESS: not an RFC 5780 server. Its Binding still counts in the
            // multi-server comparison below; the RFC 5780 tests stay not run.
            rfc5780.push(entry);
            continue;
        };
        let t2 = ex(cfg, &fsock, *primary, Change::IpAndPort, deadline).await;
        progress.send(family, url, TestLabel::FilteringII, &t2);
        let t3 = ex(cfg, &fsock, *primary, Change::Port, deadline).await;
        progress.send(family, url, TestLabel::FilteringIII, &t3);
        entry.filtering = Some(vec![t1, t2, t3]);

        if let Ok(msock) = UdpSocket::bind(any(v4)).await {
            let m1 = ex(cfg, &msock, *primary, Change::None, deadline).await;
            progress.send(family, url, TestLabel::MappingI, &m1);
            let m2 = ex(
                cfg,
                &msock,
                SocketAddr::new(other.ip(), primary.port()),
                Change::None,
                deadline,
            )
            .await;
            progress.send(family, url, TestLabel::MappingII, &m2);
            let m3 = ex(cfg, &msock, other, Change::None, deadline).await;
            progress.send(family, url, TestLabel::MappingIII, &m3);
            entry.mapping = Some(vec![m1, m2, m3]);
        }
        rfc5780.push(entry);
    }

    // Multi-server comparison from one socket, then hairpin from it.
    let mut multi = vec![];
    let mut hair = None;
    if let Ok(ssock) = UdpSocket::bind(any(v4)).await {
        for (url, primary) in &servers {
            let e = ex(cfg, &ssock, *primary, Change::None, deadline).await;
            progress.send(family, url, TestLabel::Multi, &e);
            multi.push(e);
        }
        if let Some(mapped) = multi.iter().find_map(|e| e.answer.mapped()) {
            let h = hairpin(&ssock, mapped, cfg.rto, cfg.test_timeout).await;
            hair = Some(h);
        }
    }

    // Nothing answered over UDP: does TCP work?
    let udp_silent = multi.iter().all(|e| matches!(e.answer, Answer::Timeout));
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
        family: family.into(),
        local_addresses,
        rfc5780,
        multi,
        hairpin: hair,
        lifetime,
        tcp_fallback,
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
