//! `iceprobe gather`: trickle ICE candidates from STUN/TURN servers over UDP, TCP and TLS, and
//! report every failure with its phase, code and cause.
//!
//! Plan: one shared UDP socket per address family (the host candidates' base, as in a browser);
//! srflx from every STUN URL and every UDP TURN URL (browsers use those as STUN servers too);
//! relay from every TURN URL over its own transport. Each allocation is released (Refresh
//! LIFETIME 0) as soon as its candidate is known, and on the deadline or Ctrl-C.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

pub(crate) mod verdict;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::candidate::{Candidate, CandidateType};
use crate::failure::{
    expired_rest_username, explain_code, explain_io, explain_no_answer, explain_turn, ErrorContext,
};
use crate::ice_url::{Protocol, Scheme, ServerUrl};
use crate::model::{
    Event, Expectation, GatherReport, Released, RunInfo, ServerSummary, SCHEMA_VERSION,
};
use crate::model::{Failure, Phase};
use crate::net::connect;
use crate::net::dns::{self, Families};
use crate::net::driver::{drive, Link, Stop};
use crate::net::ifaces::{self, HostFilter};
use crate::net::tls::TlsOptions;
use crate::net::udp::UdpMux;
use crate::proto::binding::{Binding, BindingOutcome};
use crate::proto::turn::{TurnClient, TurnConfig, TurnEvent, TurnFailure, TurnOp};
use crate::servers::IceServer;

/// Everything `gather` needs, validated.
#[derive(Debug, Clone)]
pub struct GatherConfig {
    /// Servers with their credentials.
    pub servers: Vec<IceServer>,
    /// ICE transport policy "relay".
    pub relay_only: bool,
    /// Address families.
    pub families: Families,
    /// Deadline for the whole run.
    pub timeout: Duration,
    /// Initial STUN retransmission timeout over UDP.
    pub rto: Duration,
    /// Which local addresses become host candidates.
    pub hosts: HostFilter,
    /// TLS verification.
    pub tls: TlsOptions,
    /// Credentials were minted from a REST secret (refines 401 causes).
    pub rest_credentials: bool,
    /// Wall-clock time the run started (Unix seconds): recognises expired REST usernames.
    pub now_unix: u64,
}

/// Shared per-run context handed to each probe task.
#[derive(Clone)]
struct Ctx {
    t0: Instant,
    deadline: Instant,
    events: mpsc::UnboundedSender<Event>,
    cancel: watch::Receiver<bool>,
    rto: Duration,
    tls: TlsOptions,
    err_ctx: ErrorContext,
    /// [`GatherConfig::now_unix`].
    now_unix: u64,
    /// Release grace after the deadline or Ctrl-C.
    grace: Duration,
    /// The candidate the current probe is after, named in its errors.
    candidate: CandidateType,
}

impl Ctx {
    /// The same context for a probe after `candidate`.
    fn probing(&self, candidate: CandidateType) -> Ctx {
        Ctx {
            candidate,
            ..self.clone()
        }
    }

    fn ms(&self) -> f64 {
        self.t0.elapsed().as_secs_f64() * 1000.0
    }

    fn fail(
        &self,
        url: &ServerUrl,
        addr: Option<SocketAddr>,
        phase: Phase,
        code: Option<u16>,
        reason: Option<String>,
        cause: String,
    ) -> Expectation {
        let f = Failure {
            url: url.to_string(),
            candidate: self.candidate,
            address: addr.map(|a| a.to_string()),
            phase,
            code,
            reason,
            cause: cause.clone(),
            elapsed_ms: self.ms(),
        };
        let _ = self.events.send(Event::Error(f));
        Expectation::Failed { phase, cause }
    }
}

/// One UDP socket per family.
struct Sockets {
    v4: Option<(Arc<UdpMux>, u16)>,
    v6: Option<(Arc<UdpMux>, u16)>,
}

impl Sockets {
    fn for_ip(&self, ip: IpAddr) -> Option<&(Arc<UdpMux>, u16)> {
        match ip {
            IpAddr::V4(_) => self.v4.as_ref(),
            IpAddr::V6(_) => self.v6.as_ref(),
        }
    }
}

/// Run a gather. Events stream out of `events` as they happen; the final report is returned
/// (and also sent as the `summary` event).
pub async fn gather(
    cfg: GatherConfig,
    events: mpsc::UnboundedSender<Event>,
    cancel: watch::Receiver<bool>,
) -> GatherReport {
    let t0 = Instant::now();
    let deadline = t0 + cfg.timeout;
    let run = RunInfo {
        command: "gather".into(),
        servers: cfg.servers.iter().map(|s| s.url.to_string()).collect(),
        timeout_ms: cfg.timeout.as_millis() as u64,
        relay_only: cfg.relay_only,
        families: [(cfg.families.v4, "ipv4"), (cfg.families.v6, "ipv6")]
            .iter()
            .filter(|f| f.0)
            .map(|f| f.1.to_string())
            .collect(),
        insecure_tls: cfg.tls.insecure,
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let _ = tx.send(Event::Start(run.clone()));
    let ctx = Ctx {
        t0,
        deadline,
        events: tx.clone(),
        cancel: cancel.clone(),
        rto: cfg.rto,
        tls: cfg.tls.clone(),
        err_ctx: ErrorContext {
            rest_credentials: cfg.rest_credentials,
            alternate_server: None,
            rest_expired_at: None,
        },
        now_unix: cfg.now_unix,
        grace: (cfg.timeout / 20).clamp(Duration::from_millis(50), Duration::from_millis(300)),
        candidate: CandidateType::Srflx,
    };

    let bind = |ip: IpAddr| async move {
        let mux = UdpMux::bind(SocketAddr::new(ip, 0)).await.ok()?;
        let port = mux.local_addr().ok()?.port();
        Some((Arc::new(mux), port))
    };
    let sockets = Sockets {
        v4: if cfg.families.v4 {
            bind(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).await
        } else {
            None
        },
        v6: if cfg.families.v6 {
            bind(IpAddr::V6(Ipv6Addr::UNSPECIFIED)).await
        } else {
            None
        },
    };

    if !cfg.relay_only {
        emit_hosts(&ctx, &cfg.hosts, &sockets);
    }

    let mut tasks = JoinSet::new();
    for (i, server) in cfg.servers.iter().enumerate() {
        let ctx = ctx.clone();
        let server = server.clone();
        let sockets = Sockets {
            v4: sockets.v4.clone(),
            v6: sockets.v6.clone(),
        };
        let families = cfg.families;
        let relay_only = cfg.relay_only;
        tasks.spawn(async move {
            (
                i,
                probe_server(ctx, server, sockets, families, relay_only).await,
            )
        });
    }
    drop(tx);

    // Forward events while the probes run, keeping the report's copy in arrival order.
    let mut candidates = vec![];
    let mut errors = vec![];
    let mut summaries: Vec<Option<ServerSummary>> = vec![None; cfg.servers.len()];
    let forward = |ev: Event, candidates: &mut Vec<Candidate>, errors: &mut Vec<Failure>| {
        match &ev {
            Event::Candidate(c) => candidates.push(c.clone()),
            Event::Error(f) => errors.push(f.clone()),
            _ => {}
        }
        let _ = events.send(ev);
    };
    loop {
        tokio::select! {
            Some(ev) = rx.recv() => forward(ev, &mut candidates, &mut errors),
            r = tasks.join_next() => match r {
                Some(Ok((i, s))) => summaries[i] = Some(s),
                Some(Err(_)) => {}
                None => break,
            },
        }
    }
    drop(ctx);
    while let Ok(ev) = rx.try_recv() {
        forward(ev, &mut candidates, &mut errors);
    }
    let servers: Vec<ServerSummary> = summaries
        .into_iter()
        .zip(&cfg.servers)
        .map(|(s, srv)| {
            s.unwrap_or_else(|| ServerSummary {
                url: srv.url.to_string(),
                srflx: Expectation::NotChecked {
                    reason: "probe task failed".into(),
                },
                relay: Expectation::NotChecked {
                    reason: "probe task failed".into(),
                },
                released: None,
            })
        })
        .collect();
    let verdict = verdict::verdict(&servers, &candidates);
    let report = GatherReport {
        schema_version: SCHEMA_VERSION,
        command: "gather".into(),
        iceprobe_version: env!("CARGO_PKG_VERSION").into(),
        run,
        duration_ms: t0.elapsed().as_secs_f64() * 1000.0,
        timed_out: Instant::now() >= deadline,
        candidates,
        errors,
        servers,
        expectations: Vec::new(),
        verdict,
    };
    let _ = events.send(Event::Summary(report.clone()));
    report
}

fn emit_hosts(ctx: &Ctx, filter: &HostFilter, sockets: &Sockets) {
    let Ok(addrs) = ifaces::local_addresses(filter) else {
        return;
    };
    for a in addrs {
        let Some((_, port)) = sockets.for_ip(a.ip) else {
            continue;
        };
        let c = Candidate::new(
            CandidateType::Host,
            SocketAddr::new(a.ip, *port),
            None,
            a.ip,
            None,
            None,
            a.index,
            ctx.ms(),
        );
        let _ = ctx.events.send(Event::Candidate(c));
    }
}

/// The base IP the OS would use to reach `server` (a connected UDP socket's local address).
async fn route_source(server: SocketAddr) -> Option<IpAddr> {
    let any: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = tokio::net::UdpSocket::bind(any).await.ok()?;
    s.connect(server).await.ok()?;
    s.local_addr().ok().map(|a| a.ip())
}

/// Why gather leaves a TURN-over-DTLS server alone.
const NO_DTLS: &str = "browsers do not use TURN over DTLS (RFC 7350): iceprobe check probes it";

async fn probe_server(
    ctx: Ctx,
    server: IceServer,
    sockets: Sockets,
    families: Families,
    relay_only: bool,
) -> ServerSummary {
    let url = server.url.clone();
    let nc = |r: &str| Expectation::NotChecked {
        reason: r.to_string(),
    };
    let mut summary = ServerSummary {
        url: url.to_string(),
        srflx: nc(""),
        relay: nc(""),
        released: None,
    };
    if url.protocol() == Protocol::Dtls {
        // Not even resolved: nothing of it is what a browser would gather.
        summary.srflx = nc(NO_DTLS);
        summary.relay = nc(NO_DTLS);
        return summary;
    }

    let addrs = match dns::resolve(&url, families, ctx.deadline.into()).await {
        Ok(a) => a,
        Err(e) => {
            let phase = if matches!(e, dns::DnsError::Timeout { .. }) {
                Phase::Timeout
            } else {
                Phase::Dns
            };
            // One error for the server; it fails every candidate it was asked for.
            let who = if url.is_turn() {
                CandidateType::Relay
            } else {
                CandidateType::Srflx
            };
            let failed =
                ctx.probing(who)
                    .fail(&url, None, phase, None, Some(e.to_string()), e.to_string());
            summary.srflx = match wants_srflx(&url, relay_only) {
                Ok(()) => failed.clone(),
                Err(r) => nc(r),
            };
            summary.relay = if url.is_turn() {
                failed
            } else {
                nc("stun: URLs give no relay")
            };
            return summary;
        }
    };
    // Browsers use the first address; `check` probes them all.
    let addr = addrs[0];

    let srflx = async {
        match wants_srflx(&url, relay_only) {
            Err(reason) => nc(reason),
            Ok(()) => srflx_probe(&ctx.probing(CandidateType::Srflx), &url, addr, &sockets).await,
        }
    };
    let relay = async {
        if url.is_turn() {
            relay_probe(&ctx.probing(CandidateType::Relay), &server, addr, &sockets).await
        } else {
            (nc("stun: URLs give no relay"), None)
        }
    };
    let (s, (r, released)) = tokio::join!(srflx, relay);
    summary.srflx = s;
    summary.relay = r;
    summary.released = released;
    summary
}

/// Whether this URL should give a srflx candidate, or why not.
fn wants_srflx(url: &ServerUrl, relay_only: bool) -> Result<(), &'static str> {
    if relay_only {
        return Err("--relay-only gathers relay candidates only");
    }
    match (url.scheme, url.protocol()) {
        (Scheme::Stun | Scheme::Stuns, _) => Ok(()),
        (Scheme::Turn, Protocol::Udp) => Ok(()),
        _ => Err("browsers use only UDP TURN servers for srflx"),
    }
}

async fn srflx_probe(
    ctx: &Ctx,
    url: &ServerUrl,
    addr: SocketAddr,
    sockets: &Sockets,
) -> Expectation {
    let proto = url.protocol();
    let (mut link, base_ip, base_port) = match proto {
        Protocol::Udp => {
            let Some((mux, port)) = sockets.for_ip(addr.ip()) else {
                return ctx.fail(
                    url,
                    Some(addr),
                    Phase::Connect,
                    None,
                    None,
                    "no local UDP socket of the server's address family".into(),
                );
            };
            let base = route_source(addr).await.unwrap_or(addr.ip());
            (Link::Udp(mux.link(addr)), base, *port)
        }
        Protocol::Tcp | Protocol::Tls | Protocol::Dtls => {
            match open_link(ctx, url, addr, sockets).await {
                Ok((link, local)) => (link, local.ip(), local.port()),
                Err(e) => return e,
            }
        }
    };
    let mut binding = Binding::new(Instant::now(), ctx.rto, proto.is_stream());
    let mut outcome = None;
    let mut cancel = ctx.cancel.clone();
    let stop = drive(
        &mut link,
        &mut binding,
        ctx.deadline,
        &mut cancel,
        |_, o, _| {
            outcome = Some(o);
            true
        },
    )
    .await;
    link.close().await;
    match (outcome, stop) {
        (Some(BindingOutcome::Success { mapped, .. }), _) => {
            let mut c = Candidate::new(
                CandidateType::Srflx,
                mapped,
                Some(SocketAddr::new(base_ip, base_port)),
                base_ip,
                None,
                Some((url, addr.ip())),
                0,
                ctx.ms(),
            );
            if proto.is_stream() {
                c.transport = Protocol::Tcp;
            }
            let elapsed_ms = c.elapsed_ms;
            let _ = ctx.events.send(Event::Candidate(c));
            Expectation::Ok { elapsed_ms }
        }
        (Some(BindingOutcome::Error(e)), _) => {
            let cause = explain_code(
                Phase::Stun,
                e.code,
                &ctx.err_ctx.with_alternate(e.alternate_server),
            );
            ctx.fail(
                url,
                Some(addr),
                Phase::Stun,
                Some(e.code),
                Some(e.reason),
                cause,
            )
        }
        (Some(BindingOutcome::NoMappedAddress), _) => ctx.fail(
            url,
            Some(addr),
            Phase::Stun,
            None,
            Some("success without XOR-MAPPED-ADDRESS".into()),
            "the server answered Binding without a mapped address: not a working STUN server"
                .into(),
        ),
        (Some(BindingOutcome::Timeout { sends }), _) => {
            let rejected = binding.rejects().summary();
            ctx.fail(
                url,
                Some(addr),
                Phase::Timeout,
                None,
                rejected.as_ref().map(|_| "replies rejected".to_string()),
                explain_no_answer(proto, addr.port(), Some(sends), rejected.as_deref()),
            )
        }
        (None, stop) => {
            let rejected = binding.rejects().summary();
            stop_failure(ctx, url, addr, proto, Phase::Stun, stop, rejected)
        }
    }
}

fn stop_failure(
    ctx: &Ctx,
    url: &ServerUrl,
    addr: SocketAddr,
    proto: Protocol,
    phase: Phase,
    stop: Stop,
    rejected: Option<String>,
) -> Expectation {
    match stop {
        Stop::Cancelled => ctx.fail(
            url,
            Some(addr),
            phase,
            None,
            Some("cancelled".into()),
            "interrupted (Ctrl-C or SIGTERM) before the server answered".into(),
        ),
        Stop::Deadline | Stop::Done => ctx.fail(
            url,
            Some(addr),
            Phase::Timeout,
            None,
            rejected.as_ref().map(|_| "replies rejected".to_string()),
            explain_no_answer(proto, addr.port(), None, rejected.as_deref()),
        ),
        Stop::Closed => ctx.fail(
            url,
            Some(addr),
            phase,
            None,
            Some("connection closed".into()),
            "the server closed the connection without answering".into(),
        ),
        Stop::Io(e) => {
            let (phase, cause) = explain_io(proto, addr.port(), &e);
            ctx.fail(url, Some(addr), phase, None, Some(e.to_string()), cause)
        }
    }
}

/// Open the link for `url`, reporting connect/TLS failures as error events.
async fn open_link(
    ctx: &Ctx,
    url: &ServerUrl,
    addr: SocketAddr,
    sockets: &Sockets,
) -> Result<(Link, SocketAddr), Expectation> {
    let mux = sockets.for_ip(addr.ip()).map(|(m, _)| m.as_ref());
    match connect::open(url, addr, mux, &ctx.tls, ctx.deadline).await {
        Ok(o) => Ok((o.link, o.local)),
        Err(e) => Err(ctx.fail(url, Some(addr), e.phase, None, Some(e.reason), e.cause)),
    }
}

async fn relay_probe(
    ctx: &Ctx,
    server: &IceServer,
    addr: SocketAddr,
    sockets: &Sockets,
) -> (Expectation, Option<bool>) {
    let url = &server.url;
    let proto = url.protocol();
    let mut link = match open_link(ctx, url, addr, sockets).await {
        Ok((l, _)) => l,
        Err(e) => return (e, None),
    };
    let client = TurnClient::new(TurnConfig {
        username: server.username.clone(),
        password: server.credential.clone(),
        ipv6_relay: None,
        rto: ctx.rto,
        reliable: proto.is_stream(),
    });
    let mut client = match client {
        Ok(c) => c,
        Err(e) => {
            return (
                ctx.fail(
                    url,
                    Some(addr),
                    Phase::TurnAllocate,
                    None,
                    Some(e.clone()),
                    format!("internal error: {e}"),
                ),
                None,
            )
        }
    };
    client.allocate(Instant::now());
    let mut result: Option<Expectation> = None;
    let mut relayed_addr = None;
    let mut cancel = ctx.cancel.clone();
    let stop = drive(
        &mut link,
        &mut client,
        ctx.deadline,
        &mut cancel,
        |_, ev, _| match ev {
            TurnEvent::Allocated {
                relayed, mapped, ..
            } => {
                let base = mapped.unwrap_or(relayed);
                let c = Candidate::new(
                    CandidateType::Relay,
                    relayed,
                    mapped,
                    base.ip(),
                    Some(proto),
                    Some((url, addr.ip())),
                    0,
                    ctx.ms(),
                );
                result = Some(Expectation::Ok {
                    elapsed_ms: c.elapsed_ms,
                });
                relayed_addr = Some(relayed);
                let _ = ctx.events.send(Event::Candidate(c));
                true
            }
            TurnEvent::Failed { op, failure } => {
                result = Some(turn_failure(ctx, server, addr, proto, op, failure));
                true
            }
            _ => false,
        },
    )
    .await;
    let rejected = client.rejects().summary();
    let result = result.unwrap_or_else(|| {
        stop_failure(ctx, url, addr, proto, Phase::TurnAllocate, stop, rejected)
    });
    let released = release(ctx, &mut link, &mut client, url, relayed_addr).await;
    link.close().await;
    (result, released)
}

/// Release the allocation if one may exist; within the deadline, or a short grace after it.
async fn release(
    ctx: &Ctx,
    link: &mut Link,
    client: &mut TurnClient,
    url: &ServerUrl,
    relayed: Option<SocketAddr>,
) -> Option<bool> {
    client.abandon();
    while client.poll_event().is_some() {}
    client.release(Instant::now());
    if !client.is_busy() {
        return relayed.map(|_| false);
    }
    let deadline = ctx
        .deadline
        .max(Instant::now())
        .min(Instant::now() + Duration::from_secs(2))
        .max(Instant::now() + ctx.grace);
    // Ctrl-C must not stop the release itself.
    let (_keep, mut never) = watch::channel(false);
    let mut released = false;
    drive(link, client, deadline, &mut never, |_, ev, _| match ev {
        TurnEvent::Released { .. } => {
            released = true;
            true
        }
        TurnEvent::Failed { .. } => true,
        _ => false,
    })
    .await;
    if released {
        if let Some(r) = relayed {
            let _ = ctx.events.send(Event::Released(Released {
                url: url.to_string(),
                relayed: r.to_string(),
                elapsed_ms: ctx.ms(),
            }));
        }
    }
    Some(released)
}

fn turn_failure(
    ctx: &Ctx,
    server: &IceServer,
    addr: SocketAddr,
    proto: Protocol,
    op: TurnOp,
    failure: TurnFailure,
) -> Expectation {
    let err_ctx = ErrorContext {
        rest_expired_at: server
            .username
            .as_deref()
            .and_then(|u| expired_rest_username(u, ctx.now_unix)),
        ..ctx.err_ctx.clone()
    };
    let e = explain_turn(op, &failure, proto, addr.port(), &err_ctx);
    ctx.fail(&server.url, Some(addr), e.phase, e.code, e.reason, e.cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srflx_plan_matches_browsers() {
        let cases: &[(&str, bool, bool)] = &[
            ("stun:h", false, true),
            ("stuns:h", false, true),
            ("turn:h", false, true),
            ("turn:h?transport=tcp", false, false),
            ("turns:h", false, false),
            ("stun:h", true, false),
            ("turn:h", true, false),
        ];
        for (u, relay_only, want) in cases {
            let url: ServerUrl = u.parse().unwrap();
            assert_eq!(
                wants_srflx(&url, *relay_only).is_ok(),
                *want,
                "{u} relay_only={relay_only}"
            );
        }
    }
}
