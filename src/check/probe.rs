//! The I/O edge of one `check` row: open the two links (A carries the row's stages, B is the
//! echo peer: a second allocation we own) at once, record their connect and TLS stages, then
//! drive the row's sans-IO machine ([`super::row::Row`]) over both until it is finished.
//! Every wait is bounded by the run's [`Budget`]; releases are inside it.
#![allow(clippy::disallowed_methods)] // the I/O edge: reads the clock

use std::time::Instant;

use tokio::sync::watch;

use super::plan::{ProbeConfig, RowInput};
use super::row::{Row, RowEvent, RowSettings};
use super::stages::{blank, skip_rest};
use crate::model::check::{CheckRow, Nothing, Stage};
use crate::net::driver::{drive_links, flush, never_cancelled, Link, Stop};
use crate::net::open::Opened;
use crate::probe::explain::{expired_rest_username, ErrorContext};
use crate::probe::failure::OpenStage;
use crate::probe::link::{self, NotOpened, Udp};
use crate::probe::{session, Budget};
use crate::proto::turn::TurnClient;

/// Probe one row. Never panics; every wait is bounded by `budget`, releases included.
pub async fn probe_row(
    cfg: &ProbeConfig,
    input: RowInput,
    budget: Budget,
    cancel: watch::Receiver<bool>,
) -> CheckRow {
    let mut row = blank(&input);
    if input.dns.is_failed() {
        skip_rest(&mut row, "DNS failed");
        return row;
    }
    let proto = input.probed.protocol();
    let turn = input.probed.is_turn();
    let open = || {
        link::open(
            &input.probed,
            input.addr,
            Udp::Pool(&cfg.udp),
            &cfg.tls,
            budget.probe_deadline(),
        )
    };
    // Connect and TLS for both sides at once: opening B only after A is allocated would put a
    // second connect, TLS handshake and 401 + Allocate on the critical path.
    let (a_open, b_open) = tokio::join!(open(), async {
        if turn {
            Some(open().await)
        } else {
            None
        }
    });
    let a = match a_open {
        Ok(a) => a,
        Err(e) => {
            if let Some(Ok(mut b)) = b_open {
                b.link.close().await; // nothing was sent on it
            }
            record_open_failure(&mut row, e);
            skip_rest(&mut row, "could not reach the server");
            return row;
        }
    };
    if let Some(c) = a.connect {
        row.connect = Stage::ok(crate::model::ms(c), Nothing {});
    }
    if let Some(info) = &a.tls {
        row.tls = Stage::ok(info.handshake_ms, info.clone());
    }
    let client = || {
        session::client(
            input.username.clone(),
            input.password.clone(),
            cfg.rto,
            proto.is_stream(),
            cfg.ipv6_relay.then_some(true),
        )
    };
    let mut links = vec![a.link];
    let a_client: TurnClient = match client() {
        Ok(c) => c,
        Err(f) => {
            row.binding = Stage::fail(None, f);
            skip_rest(&mut row, "could not reach the server");
            links[0].close().await;
            return row;
        }
    };
    let b = b_open.map(|b| {
        b.map_err(|e| e.failure).and_then(|o: Opened| {
            links.push(o.link);
            client()
        })
    });
    let settings = RowSettings {
        err_ctx: ErrorContext {
            rest_credentials: cfg.rest_credentials,
            alternate_server: None,
            rest_expired_at: input
                .username
                .as_deref()
                .and_then(|u| expired_rest_username(u, cfg.now_unix)),
        },
        echo_timeout: cfg.echo_timeout,
        budget,
        nonce: rand::random(),
    };
    let mut machine = Row::new(Instant::now(), row, settings, a_client, b);
    drive_row(&mut links, &mut machine, budget, cancel).await;
    for l in &mut links {
        l.close().await;
    }
    machine.into_row()
}

/// Drive `row` over `links` until it is finished. Ctrl-C and a link going down are told to
/// the machine, which decides what they end; the deadline ends the wait (what the machine has
/// queued by then, e.g. a release, is still sent).
async fn drive_row(
    links: &mut [Link],
    row: &mut Row,
    budget: Budget,
    mut cancel: watch::Receiver<bool>,
) {
    let (_keep, never) = never_cancelled();
    while !row.is_done() {
        let stop = drive_links(links, row, budget.deadline(), &mut cancel, |_, ev, _| {
            ev == RowEvent::Finished
        })
        .await;
        match stop {
            Stop::Done => break,
            Stop::Cancelled => {
                row.handle_cancel(Instant::now());
                cancel = never.clone();
            }
            Stop::Link { link, down } => {
                row.handle_link_down(Instant::now(), link, down);
                links[link] = Link::Closed;
            }
            Stop::Deadline => {
                row.handle_timeout(budget.deadline().max(Instant::now()));
                flush(links, row).await;
                break;
            }
        }
    }
}

/// A's link could not be opened: the stage that failed says why.
fn record_open_failure(row: &mut CheckRow, e: NotOpened) {
    match e.stage {
        OpenStage::Tls { connect } => {
            if let Some(c) = connect {
                row.connect = Stage::ok(crate::model::ms(c), Nothing {});
            }
            row.tls = Stage::fail(Some(e.ms), e.failure);
        }
        OpenStage::Connect => row.connect = Stage::fail(Some(e.ms), e.failure),
    }
}
