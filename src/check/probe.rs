//! One `check` row: a server address over one transport, stage by stage — connect, TLS, STUN
//! Binding, the 401 challenge, Allocate, CreatePermission, ChannelBind, real data through the
//! relay (Send indication and ChannelData, echoed by a second allocation we own), and release.
//!
//! The critical path is kept at the protocol minimum: the Binding runs beside the Allocate,
//! permission beside channel bind, both echoes at once, both releases at once; the echo peer's
//! connection and allocation are made beside the row's own. The round trips this adds up to are
//! asserted in `proto/turn/tests/critical_path.rs` (TURN/UDP 6 RTT; see BENCHMARKS.md).
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::side::{release, release_both, Side};
use super::stages::{
    blank, failed, ms, peer_allocation_failure, skip_rest, stage_cast, stop_stage, turn_failure,
};
use crate::failure::{expired_rest_username, ErrorContext};
use crate::ice_url::{Protocol, ServerUrl};
use crate::model::check::*;
use crate::model::Phase;
use crate::net::driver::Stop;
use crate::net::tls::TlsOptions;
use crate::proto::turn::{TurnEvent, TurnFailure, TurnOp};
use crate::secret::Secret;

/// Channel number used for the ChannelData echo (RFC 8656 §12: 0x4000–0x4FFF).
const CHANNEL: u16 = 0x4000;

/// Settings shared by every row.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Initial RTO over UDP.
    pub rto: Duration,
    /// TLS verification.
    pub tls: TlsOptions,
    /// Ask for an IPv6 relay (REQUESTED-ADDRESS-FAMILY).
    pub ipv6_relay: bool,
    /// Credentials came from a REST secret.
    pub rest_credentials: bool,
    /// Wall-clock time the run started (Unix seconds): recognises expired REST usernames.
    pub now_unix: u64,
    /// Longest wait for the echoes, within the deadline.
    pub echo_timeout: Duration,
    /// UDP sockets shared by the rows of one run ([`crate::check::run::check`] gives each run
    /// a fresh pool).
    pub udp: std::sync::Arc<crate::net::udp::MuxPool>,
}

/// What one row probes.
#[derive(Debug, Clone)]
pub struct RowInput {
    /// The URL as given.
    pub url: ServerUrl,
    /// The URL probed for this transport.
    pub probed: ServerUrl,
    /// The server address.
    pub addr: SocketAddr,
    /// DNS stage for the host (shared by its rows).
    pub dns: Stage<DnsInfo>,
    /// TURN username.
    pub username: Option<String>,
    /// TURN credential.
    pub password: Option<Secret>,
}

/// Probe one row. Never panics; every wait is bounded by `deadline` (releases get a short grace).
pub async fn probe_row(
    cfg: &ProbeConfig,
    input: RowInput,
    deadline: Instant,
    cancel: watch::Receiver<bool>,
) -> CheckRow {
    let mut row = blank(&input);
    if input.dns.is_failed() {
        skip_rest(&mut row, "DNS failed");
        return row;
    }
    let err_ctx = ErrorContext {
        rest_credentials: cfg.rest_credentials,
        alternate_server: None,
        rest_expired_at: input
            .username
            .as_deref()
            .and_then(|u| expired_rest_username(u, cfg.now_unix)),
    };
    let proto = input.probed.protocol();

    // Connect and TLS for both sides at once: A carries the row's stages, B is the echo peer (a
    // second allocation we own). Opening B only after A is allocated would put a second connect,
    // TLS handshake and 401 + Allocate on the critical path (see `critical_path_round_trips`).
    let turn = input.probed.is_turn();
    let (a_open, b_open) = tokio::join!(Side::open(cfg, &input, deadline), async {
        if turn {
            Some(Side::open(cfg, &input, deadline).await)
        } else {
            None
        }
    });
    let mut b_open = b_open.map(|r| r.map(|(side, _)| side));
    let (mut a, opened) = match a_open {
        Ok(x) => x,
        Err(e) => {
            if let Some(Ok(b)) = b_open.as_mut() {
                b.link.close().await; // nothing was sent on it
            }
            let stage_ms = Some(ms(e.elapsed));
            match (e.phase, e.connect) {
                (Phase::Tls, Some(c)) | (Phase::Timeout, Some(c)) if proto == Protocol::Tls => {
                    row.connect = Stage::Ok {
                        ms: ms(c),
                        info: Nothing {},
                    };
                    row.tls = failed(stage_ms, e.phase, None, Some(e.reason), e.cause);
                }
                // DTLS has no connect: the handshake is the first exchange.
                (Phase::Tls | Phase::Timeout, None) if proto == Protocol::Dtls => {
                    row.tls = failed(stage_ms, e.phase, None, Some(e.reason), e.cause);
                }
                _ => row.connect = failed(stage_ms, e.phase, None, Some(e.reason), e.cause),
            }
            skip_rest(&mut row, "could not reach the server");
            return row;
        }
    };
    if let Some(c) = opened.connect {
        row.connect = Stage::Ok {
            ms: ms(c),
            info: Nothing {},
        };
    }
    if let Some(info) = opened.tls {
        row.tls = Stage::Ok {
            ms: info.handshake_ms,
            info,
        };
    }

    // Binding beside A's Allocate on A's link, and B's Allocate at the same time on B's.
    let t = Instant::now();
    a.client.binding(t);
    if turn {
        a.client.allocate(t);
    }
    if let Some(Ok(b)) = b_open.as_mut() {
        b.client.allocate(t);
    }
    let mut bound = false;
    let mut allocated: Option<SocketAddr> = None;
    let mut a_failed = false;
    let mut b_relayed: Option<SocketAddr> = None;
    let (mut ca, mut cb) = (cancel.clone(), cancel.clone());
    let ((stop, mut events), b_run) = tokio::join!(
        a.run(deadline, &mut ca, |_, ev, _| {
            match ev {
                TurnEvent::Bound { .. } => bound = true,
                TurnEvent::Allocated { relayed, .. } => allocated = Some(*relayed),
                TurnEvent::Failed {
                    op: TurnOp::Allocate,
                    ..
                } => a_failed = true,
                TurnEvent::Failed {
                    op: TurnOp::Binding,
                    ..
                } => bound = true,
                _ => {}
            }
            bound && (!turn || allocated.is_some() || a_failed)
        }),
        async {
            match b_open.as_mut() {
                Some(Ok(b)) => Some(
                    b.run(deadline, &mut cb, |_, ev, _| match ev {
                        TurnEvent::Allocated { relayed, .. } => {
                            b_relayed = Some(*relayed);
                            true
                        }
                        TurnEvent::Failed { .. } => true,
                        _ => false,
                    })
                    .await,
                ),
                _ => None,
            }
        }
    );
    let (b_stop, mut b_events) = match b_run {
        Some((stop, events)) => (Some(stop), events),
        None => (None, vec![]),
    };
    // Both allocations raced: under a quota (486) or a full port range (508) only one of them
    // may win. If B won, it carries the row and A's refusal becomes the peer's failure, so the
    // row reads as it would had A been allocated first.
    let a_refused = events.iter().position(|e| {
        matches!(e, TurnEvent::Failed {
            op: TurnOp::Allocate,
            failure: TurnFailure::Rejected(err),
        } if matches!(err.code, 486 | 508))
    });
    if let (Some(i), Some(b_addr), Some(Ok(b))) = (a_refused, b_relayed, b_open.as_mut()) {
        if let Some(j) = b_events
            .iter()
            .position(|e| matches!(e, TurnEvent::Allocated { .. }))
        {
            std::mem::swap(&mut events[i], &mut b_events[j]);
            std::mem::swap(&mut a, b);
            allocated = Some(b_addr);
            b_relayed = None;
        }
    }
    for ev in &events {
        match ev {
            TurnEvent::Bound {
                mapped,
                rtt,
                software,
                fingerprint,
                sends,
            } => {
                row.binding = Stage::Ok {
                    ms: ms(*rtt),
                    info: BindingInfo {
                        mapped: mapped.to_string(),
                        software: software.clone(),
                        fingerprint: *fingerprint == Some(true),
                        sends: *sends,
                    },
                }
            }
            TurnEvent::Challenged { realm, rtt } => {
                row.challenge = Stage::Ok {
                    ms: ms(*rtt),
                    info: ChallengeInfo {
                        realm: realm.clone(),
                    },
                }
            }
            TurnEvent::Allocated {
                relayed,
                mapped,
                lifetime,
                rtt,
                software,
                integrity,
            } => {
                row.allocate = Stage::Ok {
                    ms: ms(*rtt),
                    info: AllocationInfo {
                        relayed: relayed.to_string(),
                        mapped: mapped.map(|m| m.to_string()),
                        lifetime_s: *lifetime,
                        integrity: *integrity,
                        software: software.clone(),
                    },
                };
                if !row.challenge.is_ok() {
                    row.challenge =
                        Stage::not_checked("the server allocated without asking for credentials");
                }
            }
            TurnEvent::Failed { op, failure } => {
                let port = input.addr.port();
                // 300 with ALTERNATE-SERVER is not a failure of the deployment: a client follows
                // it, and so do we (in the next row). Without the attribute it is a failure.
                if let (TurnOp::Allocate, TurnFailure::Rejected(e)) = (op, failure) {
                    if let (300, Some(alt)) = (e.code, e.alternate_server) {
                        row.alternate_server = Some(alt.to_string());
                        let why = format!(
                            "300 Try Alternate: redirected to {alt} (checked in the next row)"
                        );
                        if row.challenge.is_ok() {
                            row.allocate = Stage::not_checked(why);
                        } else {
                            row.challenge = Stage::not_checked(why);
                        }
                        continue;
                    }
                }
                match op {
                    TurnOp::Binding => {
                        row.binding = turn_failure(*op, failure.clone(), proto, port, &err_ctx)
                    }
                    // A failure after the 401 is the authenticated Allocate's; before it, the
                    // challenge itself failed.
                    TurnOp::Allocate if row.challenge.is_ok() => {
                        row.allocate = turn_failure(*op, failure.clone(), proto, port, &err_ctx)
                    }
                    TurnOp::Allocate => {
                        row.challenge = turn_failure(*op, failure.clone(), proto, port, &err_ctx)
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if !matches!(stop, Stop::Done) {
        let stage = stop_stage(
            &stop,
            proto,
            input.addr.port(),
            a.client.rejects().summary(),
        );
        if !row.binding.is_ok() && !row.binding.is_failed() {
            row.binding = stage.clone();
        }
        if turn && !row.challenge.is_ok() && !row.challenge.is_failed() {
            row.challenge = stage_cast(&stage);
        } else if turn
            && row.challenge.is_ok()
            && !row.allocate.is_ok()
            && !row.allocate.is_failed()
        {
            row.allocate = stage_cast(&stage);
        }
    }
    let Some(a_relayed) = allocated else {
        skip_rest(&mut row, if turn { "no allocation" } else { "STUN only" });
        let mut scratch = row.clone();
        match b_open.as_mut() {
            Some(Ok(b)) => {
                tokio::join!(
                    release(&mut a, deadline, &mut row, false),
                    release(b, deadline, &mut scratch, false)
                );
            }
            _ => release(&mut a, deadline, &mut row, false).await,
        }
        return row;
    };

    // The peer: the second allocation.
    let mut b = match b_open {
        Some(Ok(b)) => b,
        other => {
            let (reason, cause) = match other {
                Some(Err(e)) => (e.reason, e.cause),
                _ => ("not opened".into(), "internal: no peer connection".into()),
            };
            let why = format!("could not open the peer connection: {cause}");
            row.permission = failed(None, Phase::Relay, None, Some(reason), why);
            skip_rest(&mut row, "no peer allocation");
            release(&mut a, deadline, &mut row, true).await;
            return row;
        }
    };
    let Some(b_relayed) = b_relayed else {
        let failure = b_events.iter().find_map(|e| match e {
            TurnEvent::Failed { failure, .. } => Some(failure.clone()),
            _ => None,
        });
        row.permission = match failure {
            Some(f) => peer_allocation_failure(turn_failure(
                TurnOp::Allocate,
                f,
                proto,
                input.addr.port(),
                &err_ctx,
            )),
            None => peer_allocation_failure(match &b_stop {
                Some(stop) => {
                    stop_stage(stop, proto, input.addr.port(), b.client.rejects().summary())
                }
                None => failed(
                    None,
                    Phase::Relay,
                    None,
                    None,
                    "the peer allocation never ran".into(),
                ),
            }),
        };
        skip_rest(&mut row, "no peer allocation");
        release_both(&mut a, &mut b, deadline, &mut row).await;
        return row;
    };

    // Permission and channel on A; permission on B for A's relayed address.
    let t = Instant::now();
    a.client.create_permission(t, b_relayed);
    a.client.channel_bind(t, b_relayed, CHANNEL);
    b.client.create_permission(t, a_relayed);
    let (mut perm, mut chan) = (None, None);
    let mut b_perm = false;
    let (mut ca, mut cb) = (cancel.clone(), cancel.clone());
    let (ra, rb) = tokio::join!(
        a.run(deadline, &mut ca, |_, ev, _| {
            match ev {
                TurnEvent::PermissionCreated { .. }
                | TurnEvent::Failed {
                    op: TurnOp::CreatePermission,
                    ..
                } => perm = Some(ev.clone()),
                TurnEvent::ChannelBound { .. }
                | TurnEvent::Failed {
                    op: TurnOp::ChannelBind,
                    ..
                } => chan = Some(ev.clone()),
                _ => {}
            }
            perm.is_some() && chan.is_some()
        }),
        b.run(deadline, &mut cb, |_, ev, _| {
            b_perm = matches!(
                ev,
                TurnEvent::PermissionCreated { .. } | TurnEvent::Failed { .. }
            );
            b_perm
        }),
    );
    drop((ra, rb));
    row.permission = match perm {
        Some(TurnEvent::PermissionCreated { rtt, .. }) => Stage::Ok {
            ms: ms(rtt),
            info: Nothing {},
        },
        Some(TurnEvent::Failed { op, failure }) => {
            turn_failure(op, failure, proto, input.addr.port(), &err_ctx)
        }
        _ => stop_stage(
            &Stop::Deadline,
            proto,
            input.addr.port(),
            a.client.rejects().summary(),
        ),
    };
    row.channel = match chan {
        Some(TurnEvent::ChannelBound { rtt, .. }) => Stage::Ok {
            ms: ms(rtt),
            info: Nothing {},
        },
        Some(TurnEvent::Failed { op, failure }) => {
            turn_failure(op, failure, proto, input.addr.port(), &err_ctx)
        }
        _ => stop_stage(
            &Stop::Deadline,
            proto,
            input.addr.port(),
            a.client.rejects().summary(),
        ),
    };

    // Echo: A → relay A → relay B → B, and back, once by Send indication, once by ChannelData.
    if row.permission.is_ok() {
        let nonce: u64 = rand::random();
        let send_payload = format!("iceprobe-echo-send-{nonce:016x}").into_bytes();
        let chan_payload = format!("iceprobe-echo-chan-{nonce:016x}").into_bytes();
        let echo_deadline = deadline.min(Instant::now() + cfg.echo_timeout);
        let t0 = Instant::now();
        a.client.send_indication(b_relayed, &send_payload);
        if row.channel.is_ok() {
            a.client.channel_data(CHANNEL, &chan_payload);
        }
        let want_chan = row.channel.is_ok();
        let rejected_before = a.client.rejects().count() + b.client.rejects().count();
        let (mut got_send, mut got_chan) = (None, None);
        let mut echoed = 0;
        let (mut ca, mut cb) = (cancel.clone(), cancel.clone());
        tokio::join!(
            a.run(echo_deadline, &mut ca, |_, ev, now| {
                // Once a channel is bound to B, the server returns both echoes as ChannelData
                // (RFC 8656 §12.6): tell them apart by payload, not by framing.
                if let TurnEvent::Data { data, channel, .. } = ev {
                    if *data == send_payload {
                        got_send = Some(now - t0);
                    } else if *data == chan_payload {
                        got_chan = Some((now - t0, *channel));
                    }
                }
                got_send.is_some() && (!want_chan || got_chan.is_some())
            }),
            b.run(echo_deadline, &mut cb, |c, ev, _| {
                if let TurnEvent::Data {
                    data,
                    peer: Some(peer),
                    ..
                } = ev
                {
                    c.send_indication(*peer, data);
                    echoed += 1;
                }
                echoed >= if want_chan { 2 } else { 1 }
            }),
        );
        // What the relay sent instead of the echo, when it sent something unusable.
        let garbled = (a.client.rejects().count() + b.client.rejects().count() > rejected_before)
            .then(|| {
                a.client
                    .rejects()
                    .summary()
                    .or_else(|| b.client.rejects().summary())
            })
            .flatten();
        let silent = |what: &str| {
            match &garbled {
            Some(r) => failed(None, Phase::Relay, None, Some("replies rejected".into()), format!("data sent by {what} did not come back intact through the relay: {r}")),
            None => failed(None, Phase::Relay, None, Some("no echo".into()), format!("data sent by {what} did not come back through the relay: the server does not relay between allocations (check denied-peer-ip / allowed-peer-ip) or drops relayed UDP")),
        }
        };
        let bytes = send_payload.len();
        row.send_echo = match got_send {
            Some(rtt) => Stage::Ok {
                ms: ms(rtt),
                info: EchoInfo {
                    peer: b_relayed.to_string(),
                    bytes,
                },
            },
            None => silent("Send indication"),
        };
        row.channel_echo = match (want_chan, got_chan) {
            (false, _) => Stage::not_checked("skipped: ChannelBind failed"),
            (true, Some((rtt, _))) => Stage::Ok {
                ms: ms(rtt),
                info: EchoInfo {
                    peer: b_relayed.to_string(),
                    bytes,
                },
            },
            (true, None) => silent("ChannelData"),
        };
    } else {
        row.send_echo = Stage::not_checked("skipped: no permission");
        row.channel_echo = Stage::not_checked("skipped: no permission");
    }
    release_both(&mut a, &mut b, deadline, &mut row).await;
    row
}

/// The address family's any-address.
pub fn any_addr(ip: IpAddr) -> SocketAddr {
    match ip {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests set their own deadline
mod tests {
    use super::*;
    use crate::demo::DemoServer;

    async fn row_for(
        server: &DemoServer,
        url: &str,
        addr: SocketAddr,
        ca: &std::path::Path,
        password: &str,
    ) -> CheckRow {
        let cfg = ProbeConfig {
            rto: Duration::from_millis(200),
            tls: TlsOptions {
                ca_file: Some(ca.to_path_buf()),
                server_name: None,
                insecure: false,
            },
            ipv6_relay: false,
            rest_credentials: false,
            now_unix: 0,
            echo_timeout: Duration::from_secs(2),
            udp: Default::default(),
        };
        let url: ServerUrl = url.parse().unwrap();
        let input = RowInput {
            url: url.clone(),
            probed: url,
            addr,
            dns: Stage::not_checked("IP literal"),
            username: Some(server.username.clone()),
            password: Some(Secret::new(password)),
        };
        let (_tx, rx) = watch::channel(false);
        probe_row(&cfg, input, Instant::now() + Duration::from_secs(5), rx).await
    }

    /// Every stage against the in-process server, over each transport.
    #[tokio::test]
    async fn every_stage_passes_against_the_demo_server() {
        let server = DemoServer::start("127.0.0.1".parse().unwrap())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &server.ca_pem).unwrap();
        let pw = server.password.expose().to_string();
        for (url, addr) in [
            (format!("turn:{}?transport=udp", server.udp), server.udp),
            (format!("turn:{}?transport=tcp", server.tcp), server.tcp),
            (format!("turns:{}", server.tls), server.tls),
        ] {
            let row = row_for(&server, &url, addr, &ca, &pw).await;
            for (name, ok) in [
                ("binding", row.binding.is_ok()),
                ("challenge", row.challenge.is_ok()),
                ("allocate", row.allocate.is_ok()),
                ("permission", row.permission.is_ok()),
                ("channel", row.channel.is_ok()),
                ("send_echo", row.send_echo.is_ok()),
                ("channel_echo", row.channel_echo.is_ok()),
                ("release", row.release.is_ok()),
            ] {
                assert!(ok, "{url}: {name} failed: {row:#?}");
            }
            assert_eq!(row.tls.is_ok(), url.starts_with("turns:"), "{row:#?}");
            assert_eq!(row.connect.is_ok(), !url.ends_with("udp"), "{row:#?}");
        }
        let bad = row_for(
            &server,
            &format!("turn:{}", server.udp),
            server.udp,
            &ca,
            "wrong",
        )
        .await;
        assert!(bad.challenge.is_ok());
        match &bad.allocate {
            Stage::Failed {
                code: Some(401),
                phase: Phase::TurnAuth,
                ..
            } => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(bad.permission, Stage::NotChecked { .. }));
        server.shutdown().await;
    }
}
