//! One side of a row's relay test: a link to the server and a TURN client on it — opened
//! (connect, TLS, local UDP socket), driven until an event says stop, and released (Refresh
//! LIFETIME 0, with a short grace past the deadline so a release is always attempted).
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::probe::{ProbeConfig, RowInput};
use super::stages::{failed, ms, turn_failure};
use crate::failure::{local_exhaustion, ErrorContext};
use crate::ice_url::Protocol;
use crate::model::check::*;
use crate::model::Phase;
use crate::net::connect::{self, Opened};
use crate::net::driver::{drive, Link, Stop};
use crate::proto::turn::{TurnClient, TurnConfig, TurnEvent, TurnOp};

/// One side of the relay test: a link and a TURN client on it.
pub(super) struct Side {
    pub(super) link: Link,
    pub(super) client: TurnClient,
}

impl Side {
    pub(super) async fn open(
        cfg: &ProbeConfig,
        input: &RowInput,
        deadline: Instant,
    ) -> Result<(Side, Opened), connect::OpenError> {
        let proto = input.probed.protocol();
        let mut opened = if !proto.is_stream() {
            // A pooled socket with no other link to this server (see `MuxPool`).
            match cfg.udp.link(input.addr) {
                Ok((link, local)) if proto == Protocol::Dtls => {
                    connect::open_dtls(&input.probed, link, local, &cfg.tls, deadline).await?
                }
                Ok((link, local)) => Opened {
                    link: Link::Udp(link),
                    local,
                    connect: None,
                    tls: None,
                },
                Err(e) => {
                    return Err(connect::OpenError {
                        phase: Phase::Connect,
                        reason: e.to_string(),
                        cause: local_exhaustion(&e)
                            .unwrap_or_else(|| format!("cannot open a local UDP socket: {e}")),
                        elapsed: Duration::ZERO,
                        connect: None,
                    })
                }
            }
        } else {
            connect::open(&input.probed, input.addr, None, &cfg.tls, deadline).await?
        };
        let client = TurnClient::new(TurnConfig {
            username: input.username.clone(),
            password: input.password.clone(),
            ipv6_relay: cfg.ipv6_relay.then_some(true),
            rto: cfg.rto,
            reliable: input.probed.protocol().is_stream(),
        })
        .map_err(|e| connect::OpenError {
            phase: Phase::TurnAllocate,
            reason: e.clone(),
            cause: e,
            elapsed: Duration::ZERO,
            connect: None,
        })?;
        // Move the link out; `Opened` keeps the timings for the caller.
        let link = std::mem::replace(&mut opened.link, Link::Closed);
        Ok((Side { link, client }, opened))
    }

    /// Drive until `done` says so, the deadline, or a failure event (returned).
    pub(super) async fn run(
        &mut self,
        deadline: Instant,
        cancel: &mut watch::Receiver<bool>,
        mut on: impl FnMut(&mut TurnClient, &TurnEvent, Instant) -> bool,
    ) -> (Stop, Vec<TurnEvent>) {
        let mut seen = vec![];
        let stop = drive(
            &mut self.link,
            &mut self.client,
            deadline,
            cancel,
            |c, ev, now| {
                let done = on(c, &ev, now);
                seen.push(ev);
                done
            },
        )
        .await;
        (stop, seen)
    }
}

/// Release grace: a release is always attempted, even at the deadline.
fn release_deadline(deadline: Instant) -> Instant {
    let now = Instant::now();
    deadline
        .max(now + Duration::from_millis(300))
        .min(now + Duration::from_secs(2))
}

pub(super) async fn release(a: &mut Side, deadline: Instant, row: &mut CheckRow, record: bool) {
    a.client.abandon();
    while a.client.poll_event().is_some() {}
    a.client.release(Instant::now());
    if !a.client.is_busy() {
        a.link.close().await;
        return;
    }
    let (_keep, mut never) = watch::channel(false);
    let mut result = None;
    a.run(release_deadline(deadline), &mut never, |_, ev, _| {
        result = Some(ev.clone());
        matches!(ev, TurnEvent::Released { .. } | TurnEvent::Failed { .. })
    })
    .await;
    a.link.close().await;
    if record {
        row.release = match result {
            Some(TurnEvent::Released { rtt }) => Stage::Ok {
                ms: ms(rtt),
                info: Nothing {},
            },
            Some(TurnEvent::Failed { failure, .. }) => turn_failure(
                TurnOp::Release,
                failure,
                Protocol::Udp,
                0,
                &ErrorContext::default(),
            ),
            _ => failed(
                None,
                Phase::Release,
                None,
                None,
                "no answer to Refresh LIFETIME 0: the allocation may stay until it expires".into(),
            ),
        };
    }
}

pub(super) async fn release_both(
    a: &mut Side,
    b: &mut Side,
    deadline: Instant,
    row: &mut CheckRow,
) {
    let mut scratch = row.clone();
    tokio::join!(
        release(a, deadline, row, true),
        release(b, deadline, &mut scratch, true)
    );
    if !scratch.release.is_ok() && row.release.is_ok() {
        row.release = scratch.release;
    }
}
