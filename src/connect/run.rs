//! Orchestration of `iceprobe connect`: the start event, one or two sides with their signaling,
//! and the final report with the likely cause and the verdict.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::cause::{connect_verdict, likely_cause, RunFacts};
use super::peer::PeerSetup;
use super::servers::WebrtcServers;
use super::side::{run_side, SideOutcome, SideRun};
use super::signal::{memory_pair, Signal, SignalError};
use super::stdio::StdioSignal;
use crate::model::connect::{
    Cause, CauseCode, ConnectBody, ConnectEvent, ConnectReport, ConnectStart, Mode, Policy, Side,
    SideStart,
};
use crate::model::Verdict;

/// How this process signals.
#[derive(Debug, Clone)]
pub enum Signaling {
    /// Both sides here, in memory.
    Loopback,
    /// Answer over HTTP on this address.
    Listen(SocketAddr),
    /// Offer to the HTTP signaling endpoint at `base` (`http://HOST:PORT`) with `token`.
    Peer {
        /// `http://HOST:PORT`.
        base: String,
        /// The session token (a secret: `Debug` does not show it).
        token: crate::secret::Secret,
    },
    /// Copy-paste; `true`: offer.
    Stdio(bool),
}

/// One side's settings.
#[derive(Debug, Clone, Copy)]
pub struct SideConfig {
    /// ICE transport policy.
    pub policy: Policy,
    /// Local address to bind.
    pub bind: Option<IpAddr>,
}

/// Validated `connect` settings.
pub struct ConnectConfig {
    /// Servers, already split into what webrtc can use and what it cannot.
    pub servers: WebrtcServers,
    /// How to signal.
    pub signaling: Signaling,
    /// Side A (the offerer; in two-host mode: this process, whichever side it is).
    pub a: SideConfig,
    /// Side B (loopback only).
    pub b: SideConfig,
    /// Deadline for the whole run.
    pub timeout: Duration,
    /// Echo messages per side.
    pub count: u32,
    /// `--throughput`: bulk transfer for this long after the echo (the offerer sends).
    pub throughput: Option<Duration>,
}

impl ConnectConfig {
    fn mode(&self) -> Mode {
        match self.signaling {
            Signaling::Loopback => Mode::Loopback,
            Signaling::Listen(_) => Mode::Listen,
            Signaling::Peer { .. } => Mode::Peer,
            Signaling::Stdio(true) => Mode::StdioOffer,
            Signaling::Stdio(false) => Mode::StdioAnswer,
        }
    }
}

/// Run `connect`, streaming events to `tx`; returns the final report (also sent as the summary).
pub async fn run(
    cfg: ConnectConfig,
    tx: mpsc::UnboundedSender<ConnectEvent>,
    cancel: watch::Receiver<bool>,
) -> ConnectReport {
    let start = Instant::now();
    let deadline = start + cfg.timeout;
    let mode = cfg.mode();
    let local: Vec<(Side, SideConfig)> = match cfg.signaling {
        Signaling::Loopback => vec![(Side::A, cfg.a), (Side::B, cfg.b)],
        Signaling::Peer { .. } | Signaling::Stdio(true) => vec![(Side::A, cfg.a)],
        Signaling::Listen(_) | Signaling::Stdio(false) => vec![(Side::B, cfg.a)],
    };
    let _ = tx.send(ConnectEvent::Start(ConnectStart {
        mode,
        servers: cfg.servers.used.clone(),
        skipped: cfg.servers.skipped.clone(),
        sides: local
            .iter()
            .map(|(side, c)| SideStart {
                side: *side,
                policy: c.policy,
                bind: c.bind.map(|ip| ip.to_string()),
            })
            .collect(),
        timeout_ms: u64::try_from(cfg.timeout.as_millis()).unwrap_or(u64::MAX),
        count: cfg.count,
    }));
    let side_run = |side: Side, c: SideConfig| SideRun {
        setup: PeerSetup {
            side,
            policy: c.policy,
            bind: c.bind,
            servers: cfg.servers.ice_servers.clone(),
            names: cfg.servers.names.clone(),
        },
        start,
        deadline,
        count: cfg.count,
        throughput: cfg.throughput,
        events: tx.clone(),
        cancel: cancel.clone(),
    };
    let mut signal_setup_error = None;
    let outcomes: Vec<SideOutcome> = match &cfg.signaling {
        Signaling::Loopback => {
            let (sa, sb) = memory_pair();
            let a = tokio::spawn(run_side(side_run(Side::A, cfg.a), true, Box::new(sa)));
            let b = tokio::spawn(run_side(side_run(Side::B, cfg.b), false, Box::new(sb)));
            let mut v = Vec::new();
            for h in [a, b] {
                if let Ok(o) = h.await {
                    v.push(o);
                }
            }
            v
        }
        other => {
            let (side, c) = local[0];
            let offer = side == Side::A;
            let signal: Result<Box<dyn Signal>, SignalError> = match other {
                Signaling::Stdio(_) => Ok(Box::new(StdioSignal::new(offer))),
                Signaling::Listen(addr) => super::http::listen(*addr, deadline, cancel.clone())
                    .await
                    .map(|s| Box::new(s) as Box<dyn Signal>),
                Signaling::Peer { base, token } => {
                    super::http::connect(base, token.expose(), deadline, cancel.clone())
                        .await
                        .map(|s| Box::new(s) as Box<dyn Signal>)
                }
                Signaling::Loopback => unreachable!("handled above"),
            };
            match signal {
                Ok(signal) => vec![run_side(side_run(side, c), offer, signal).await],
                Err(e) => {
                    signal_setup_error = Some(e);
                    Vec::new()
                }
            }
        }
    };
    let mut sides = Vec::new();
    let mut error: Option<(Cause, i32)> = signal_setup_error.map(|e| signal_cause(&e));
    for o in outcomes {
        if error.is_none() {
            if let Some(e) = &o.build_error {
                error = Some((
                    Cause {
                        code: CauseCode::PeerConnection,
                        text: e.clone(),
                    },
                    1,
                ));
            } else if let Some(e) = &o.signal_error {
                error = Some(signal_cause(e));
            }
        }
        sides.push(o.report);
    }
    sides.sort_by_key(|s| s.side);
    let (cause, verdict) = match error {
        Some((cause, code)) => {
            let verdict = Verdict {
                ok: false,
                exit_code: code,
                summary: format!("not connected: {}", cause.text),
            };
            (Some(cause), verdict)
        }
        None => {
            let facts = RunFacts {
                relay_given: cfg.servers.has_relay,
                any_server: !cfg.servers.used.is_empty(),
            };
            let cause = if *cancel.borrow() {
                Some(Cause {
                    code: CauseCode::Interrupted,
                    text: "interrupted (Ctrl-C or SIGTERM)".into(),
                })
            } else {
                likely_cause(&sides, facts)
            };
            let verdict = connect_verdict(&sides, cause.as_ref());
            (cause, verdict)
        }
    };
    let report = ConnectReport::new(
        ConnectBody {
            mode,
            duration_ms: crate::model::ms(start.elapsed()),
            sides,
            cause,
        },
        verdict,
    );
    let _ = tx.send(ConnectEvent::Summary(Box::new(report.clone())));
    report
}

fn signal_cause(e: &SignalError) -> (Cause, i32) {
    (
        Cause {
            code: CauseCode::Signaling,
            text: e.to_string(),
        },
        e.exit_code(),
    )
}
