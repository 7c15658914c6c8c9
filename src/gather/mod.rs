//! `iceprobe gather`: trickle ICE candidates from STUN/TURN servers over UDP, TCP and TLS, and
//! report every failure with its phase, code and cause.
//!
//! Plan: one shared UDP socket per address family (the host candidates' base, as in a browser);
//! srflx from every STUN URL and every UDP TURN URL (browsers use those as STUN servers too);
//! relay from every TURN URL over its own transport. Each allocation is released (Refresh
//! LIFETIME 0) as soon as its candidate is known, and on the deadline or Ctrl-C, inside the
//! run's [`Budget`].
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

pub(crate) mod verdict;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::candidate::{Candidate, CandidateType};
use crate::ice_url::{Protocol, Scheme, ServerUrl};
use crate::model::gather::{
    FailedAt, GatherBody, GatherError, GatherEvent, GatherReport, GatherStart, Gathered, Obtained,
    Released, ServerSummary,
};
use crate::model::{Failure, Phase};
use crate::net::dns::{self, Families};
use crate::net::driver::{drive, never_cancelled, Link, Stop};
use crate::net::ifaces::{self, HostFilter};
use crate::net::tls::TlsOptions;
use crate::net::udp::UdpMux;
use crate::probe::explain::{expired_rest_username, explain_code, explain_no_answer, ErrorContext};
use crate::probe::failure::{dns_failure, stop_failure, turn_failure};
use crate::probe::link::{self, Udp};
use crate::probe::session::{self, Release, ReleaseOutcome};
use crate::probe::Budget;
use crate::proto::binding::{Binding, BindingOutcome};
use crate::proto::turn::{TurnClient, TurnEvent};
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
    /// Deadline for the whole run, releases included.
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
    budget: Budget,
    events: mpsc::UnboundedSender<GatherEvent>,
    cancel: watch::Receiver<bool>,
    rto: Duration,
    tls: TlsOptions,
    err_ctx: ErrorContext,
    /// [`GatherConfig::now_unix`].
    now_unix: u64,
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
        crate::model::ms(self.t0.elapsed())
    }

    /// Report `failure` of `url` (at `addr`, when known) as an error event; the server's
    /// summary keeps its phase and cause.
    fn fail(&self, url: &ServerUrl, addr: Option<SocketAddr>, failure: Failure) -> Gathered {
        let summary = FailedAt::from(&failure);
        let _ = self.events.send(GatherEvent::Error(GatherError {
            url: url.to_string(),
            candidate: self.candidate,
            address: addr,
            failure,
            elapsed_ms: self.ms(),
        }));
        Gathered::Failed(summary)
    }
}

/// One UDP socket per family.
#[derive(Clone)]
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

    fn udp(&self, ip: IpAddr) -> Udp<'_> {
        Udp::Shared(self.for_ip(ip).map(|(m, _)| m.as_ref()))
    }
}

/// Run a gather. Events stream out of `events` as they happen; the final report is returned
/// (and also sent as the `summary` event).
pub async fn gather(
    cfg: GatherConfig,
    events: mpsc::UnboundedSender<GatherEvent>,
    cancel: watch::Receiver<bool>,
) -> GatherReport {
    let t0 = Instant::now();
    let budget = Budget::new(t0, cfg.timeout);
    let run = GatherStart {
        command: "gather".into(),
        servers: cfg.servers.iter().map(|s| s.url.to_string()).collect(),
        timeout_ms: cfg.timeout.as_millis() as u64,
        relay_only: cfg.relay_only,
        families: cfg.families.list(),
        insecure_tls: cfg.tls.insecure,
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<GatherEvent>();
    let _ = tx.send(GatherEvent::Start(run.clone()));
    let ctx = Ctx {
        t0,
        budget,
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
        candidate: CandidateType::Srflx,
    };

    let bind = |v4: bool| async move {
        let ip = if v4 {
            IpAddr::from([0u8; 4])
        } else {
            IpAddr::from([0u8; 16])
        };
        let mux = UdpMux::bind(crate::net::any_addr(ip)).await.ok()?;
        let port = mux.local_addr().ok()?.port();
        Some((Arc::new(mux), port))
    };
    let sockets = Sockets {
        v4: if cfg.families.v4 {
            bind(true).await
        } else {
            None
        },
        v6: if cfg.families.v6 {
            bind(false).await
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
        let sockets = sockets.clone();
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
    let forward =
        |ev: GatherEvent, candidates: &mut Vec<Candidate>, errors: &mut Vec<GatherError>| {
            match &ev {
                GatherEvent::Candidate(c) => candidates.push(c.clone()),
                GatherEvent::Error(f) => errors.push(f.clone()),
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
                url: srv.url.clone(),
                srflx: Gathered::not_checked("probe task failed"),
                relay: Gathered::not_checked("probe task failed"),
                released: None,
            })
        })
        .collect();
    let verdict = verdict::verdict(&servers, &candidates);
    let report = GatherReport::new(
        GatherBody {
            run,
            duration_ms: crate::model::ms(t0.elapsed()),
            // Probes stop at the probe deadline; a run that lasted that long was cut short.
            timed_out: Instant::now() >= budget.probe_deadline(),
            fix: verdict::fix_list(&errors, &servers),
            candidates,
            errors,
            servers,
        },
        verdict,
    );
    let _ = events.send(GatherEvent::Summary(Box::new(report.clone())));
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
        let _ = ctx.events.send(GatherEvent::Candidate(c));
    }
}

/// The base IP the OS would use to reach `server` (a connected UDP socket's local address).
async fn route_source(server: SocketAddr) -> Option<IpAddr> {
    let s = tokio::net::UdpSocket::bind(crate::net::any_addr(server.ip()))
        .await
        .ok()?;
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
    let mut summary = ServerSummary {
        url: url.clone(),
        srflx: Gathered::not_checked(""),
        relay: Gathered::not_checked(""),
        released: None,
    };
    if url.protocol() == Protocol::Dtls {
        // Not even resolved: nothing of it is what a browser would gather.
        summary.srflx = Gathered::not_checked(NO_DTLS);
        summary.relay = Gathered::not_checked(NO_DTLS);
        return summary;
    }

    let addrs = match dns::resolve(&url, families, ctx.budget.probe_deadline().into()).await {
        Ok(a) => a,
        Err(e) => {
            // One error for the server; it fails every candidate it was asked for.
            let who = if url.is_turn() {
                CandidateType::Relay
            } else {
                CandidateType::Srflx
            };
            let failed = ctx.probing(who).fail(&url, None, dns_failure(&e));
            summary.srflx = match wants_srflx(&url, relay_only) {
                Ok(()) => failed.clone(),
                Err(r) => Gathered::not_checked(r),
            };
            summary.relay = if url.is_turn() {
                failed
            } else {
                Gathered::not_checked("stun: URLs give no relay")
            };
            return summary;
        }
    };
    // Browsers use the first address; `check` probes them all.
    let addr = addrs[0];

    let srflx = async {
        match wants_srflx(&url, relay_only) {
            Err(reason) => Gathered::not_checked(reason),
            Ok(()) => srflx_probe(&ctx.probing(CandidateType::Srflx), &url, addr, &sockets).await,
        }
    };
    let relay = async {
        if url.is_turn() {
            relay_probe(&ctx.probing(CandidateType::Relay), &server, addr, &sockets).await
        } else {
            (Gathered::not_checked("stun: URLs give no relay"), None)
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

/// Open the link for `url`, reporting connect/TLS failures as error events.
async fn open_link(
    ctx: &Ctx,
    url: &ServerUrl,
    addr: SocketAddr,
    sockets: &Sockets,
) -> Result<(Link, SocketAddr), Gathered> {
    match link::open(
        url,
        addr,
        sockets.udp(addr.ip()),
        &ctx.tls,
        ctx.budget.probe_deadline(),
    )
    .await
    {
        Ok(o) => Ok((o.link, o.local)),
        Err(e) => Err(ctx.fail(url, Some(addr), e.failure)),
    }
}

async fn srflx_probe(ctx: &Ctx, url: &ServerUrl, addr: SocketAddr, sockets: &Sockets) -> Gathered {
    let proto = url.protocol();
    let (mut link, base_ip, base_port) = match open_link(ctx, url, addr, sockets).await {
        Ok((link, local)) if proto == Protocol::Udp => {
            // The shared socket is bound to the any-address: the base is the route's source.
            let base = route_source(addr).await.unwrap_or(addr.ip());
            (link, base, local.port())
        }
        Ok((link, local)) => (link, local.ip(), local.port()),
        Err(e) => return e,
    };
    let mut binding = Binding::new(Instant::now(), ctx.rto, proto.is_stream());
    let mut outcome = None;
    let mut cancel = ctx.cancel.clone();
    let stop = drive(
        &mut link,
        &mut binding,
        ctx.budget.probe_deadline(),
        &mut cancel,
        |_, o, _| {
            outcome = Some(o);
            true
        },
    )
    .await;
    link.close().await;
    let fail = |failure| ctx.fail(url, Some(addr), failure);
    match outcome {
        Some(BindingOutcome::Success { mapped, .. }) => {
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
            let _ = ctx.events.send(GatherEvent::Candidate(c));
            Gathered::Ok(Obtained { elapsed_ms })
        }
        Some(BindingOutcome::Error(e)) => {
            let cause = explain_code(
                Phase::Stun,
                e.code,
                &ctx.err_ctx.with_alternate(e.alternate_server),
            );
            fail(Failure::new(Phase::Stun, Some(e.reason), cause).with_code(Some(e.code)))
        }
        Some(BindingOutcome::NoMappedAddress) => fail(Failure::new(
            Phase::Stun,
            Some("success without XOR-MAPPED-ADDRESS".into()),
            "the server answered Binding without a mapped address: not a working STUN server",
        )),
        Some(BindingOutcome::Timeout { sends }) => {
            let rejected = binding.rejects().summary();
            fail(Failure::new(
                Phase::Timeout,
                rejected.as_ref().map(|_| "replies rejected".to_string()),
                explain_no_answer(proto, addr.port(), Some(sends), rejected.as_deref()),
            ))
        }
        None => {
            let rejected = binding.rejects().summary();
            fail(stop_failure(
                &stop,
                Phase::Stun,
                proto,
                addr.port(),
                rejected.as_deref(),
            ))
        }
    }
}

async fn relay_probe(
    ctx: &Ctx,
    server: &IceServer,
    addr: SocketAddr,
    sockets: &Sockets,
) -> (Gathered, Option<bool>) {
    let url = &server.url;
    let proto = url.protocol();
    let (mut link, _) = match open_link(ctx, url, addr, sockets).await {
        Ok(l) => l,
        Err(e) => return (e, None),
    };
    let client = session::client(
        server.username.clone(),
        server.credential.clone(),
        ctx.rto,
        proto.is_stream(),
        None,
    );
    let mut client = match client {
        Ok(c) => c,
        Err(f) => return (ctx.fail(url, Some(addr), f), None),
    };
    let err_ctx = ErrorContext {
        rest_expired_at: server
            .username
            .as_deref()
            .and_then(|u| expired_rest_username(u, ctx.now_unix)),
        ..ctx.err_ctx.clone()
    };
    client.allocate(Instant::now());
    let mut result: Option<Gathered> = None;
    let mut relayed_addr = None;
    let mut cancel = ctx.cancel.clone();
    let stop = drive(
        &mut link,
        &mut client,
        ctx.budget.probe_deadline(),
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
                result = Some(Gathered::Ok(Obtained {
                    elapsed_ms: c.elapsed_ms,
                }));
                relayed_addr = Some(relayed);
                let _ = ctx.events.send(GatherEvent::Candidate(c));
                true
            }
            TurnEvent::Failed { op, failure } => {
                let f = turn_failure(op, &failure, proto, addr.port(), &err_ctx);
                result = Some(ctx.fail(url, Some(addr), f));
                true
            }
            _ => false,
        },
    )
    .await;
    let result = result.unwrap_or_else(|| {
        let rejected = client.rejects().summary();
        let f = stop_failure(
            &stop,
            Phase::TurnAllocate,
            proto,
            addr.port(),
            rejected.as_deref(),
        );
        ctx.fail(url, Some(addr), f)
    });
    let released = release(ctx, &mut link, &mut client, url, relayed_addr).await;
    link.close().await;
    (result, released)
}

/// Release the allocation if one may exist ([`Release`]: inside the run's budget, not cut
/// short by Ctrl-C). `Some(released)` when there was an allocation.
async fn release(
    ctx: &Ctx,
    link: &mut Link,
    client: &mut TurnClient,
    url: &ServerUrl,
    relayed: Option<SocketAddr>,
) -> Option<bool> {
    let mut rel = Release::start(client, Instant::now(), &ctx.budget);
    if let Some(until) = rel.until() {
        let (_keep, mut never) = never_cancelled();
        let stop = drive(link, client, until, &mut never, |_, ev, _| {
            rel.on_event(&ev);
            rel.is_done()
        })
        .await;
        match stop {
            Stop::Link { .. } => rel.on_link_down(),
            _ => rel.on_timeout(until),
        }
    }
    match rel.outcome() {
        Some(ReleaseOutcome::Released { .. }) => {
            if let Some(r) = relayed {
                let _ = ctx.events.send(GatherEvent::Released(Released {
                    url: url.to_string(),
                    relayed: r,
                    elapsed_ms: ctx.ms(),
                }));
            }
            Some(true)
        }
        Some(ReleaseOutcome::Nothing) | None => relayed.map(|_| false),
        Some(_) => Some(false),
    }
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
