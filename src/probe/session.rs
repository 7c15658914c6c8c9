//! A TURN session's life around the sans-IO client (`proto::turn`): the client made from a
//! server's credentials, and the release — Refresh LIFETIME 0 (RFC 8656 §7) — with the one rule
//! for how long its answer is waited for ([`Budget::release_deadline`]). Sans-IO too: `gather`
//! drives a release over its link, a `check` row drives two inside its machine.

use std::time::{Duration, Instant};

use super::Budget;
use crate::model::{Failure, Phase};
use crate::proto::turn::{TurnClient, TurnConfig, TurnEvent, TurnFailure};
use crate::proto::SansIo;
use crate::secret::Secret;

/// A TURN client for a server's credentials. `reliable` for TCP/TLS (no retransmissions);
/// `ipv6_relay` asks for an IPv6 relay (REQUESTED-ADDRESS-FAMILY, RFC 8656 §18.8).
pub fn client(
    username: Option<String>,
    password: Option<Secret>,
    rto: Duration,
    reliable: bool,
    ipv6_relay: Option<bool>,
) -> Result<TurnClient, Failure> {
    TurnClient::new(TurnConfig {
        username,
        password,
        ipv6_relay,
        rto,
        reliable,
    })
    .map_err(|e| {
        Failure::new(
            Phase::TurnAllocate,
            Some(e.clone()),
            format!("internal error: {e}"),
        )
    })
}

/// How a release ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Nothing was or could have been allocated: nothing was sent.
    Nothing,
    /// The server answered (success, or 437: the allocation is already gone).
    Released {
        /// Round trip of the Refresh.
        rtt: Duration,
    },
    /// The server refused the Refresh.
    Refused(TurnFailure),
    /// No answer before the release's deadline (or the link went down): the allocation may
    /// stay until it expires.
    NoAnswer,
}

impl ReleaseOutcome {
    /// The release as a report stage: its round trip, or why it failed; `None` when there was
    /// nothing to release.
    pub fn stage(&self) -> Option<Result<Duration, Failure>> {
        match self {
            ReleaseOutcome::Nothing => None,
            ReleaseOutcome::Released { rtt } => Some(Ok(*rtt)),
            ReleaseOutcome::Refused(f) => Some(Err(super::failure::turn_failure(
                crate::proto::turn::TurnOp::Release,
                f,
                crate::ice_url::Protocol::Udp,
                0,
                &super::explain::ErrorContext::default(),
            ))),
            ReleaseOutcome::NoAnswer => Some(Err(Failure::new(
                Phase::Release,
                None,
                "no answer to Refresh LIFETIME 0: the allocation may stay until it expires",
            ))),
        }
    }
}

/// A release in progress.
#[derive(Debug, Clone)]
pub struct Release {
    until: Instant,
    outcome: Option<ReleaseOutcome>,
}

impl Release {
    /// Release what `client` may hold, at `now`: pending requests are abandoned (their
    /// failures dropped: the probe is over) and Refresh LIFETIME 0 goes out, also when an
    /// authenticated Allocate is unanswered (the server may hold it). Its answer is waited for
    /// until [`Budget::release_deadline`]; Ctrl-C does not cut it short.
    pub fn start(client: &mut TurnClient, now: Instant, budget: &Budget) -> Release {
        client.abandon();
        while client.poll_event().is_some() {}
        client.release(now);
        Release {
            until: budget.release_deadline(now),
            outcome: (!client.is_busy()).then_some(ReleaseOutcome::Nothing),
        }
    }

    /// When the wait ends, while it lasts.
    pub fn until(&self) -> Option<Instant> {
        self.outcome.is_none().then_some(self.until)
    }

    /// How it ended, once it has.
    pub fn outcome(&self) -> Option<&ReleaseOutcome> {
        self.outcome.as_ref()
    }

    /// Whether it has ended.
    pub fn is_done(&self) -> bool {
        self.outcome.is_some()
    }

    /// An event of the client being released.
    pub fn on_event(&mut self, ev: &TurnEvent) {
        if self.outcome.is_some() {
            return;
        }
        match ev {
            TurnEvent::Released { rtt } => {
                self.outcome = Some(ReleaseOutcome::Released { rtt: *rtt });
            }
            TurnEvent::Failed { failure, .. } => {
                self.outcome = Some(ReleaseOutcome::Refused(failure.clone()));
            }
            _ => {}
        }
    }

    /// Time passes: unanswered at `until`.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.outcome.is_none() && now >= self.until {
            self.outcome = Some(ReleaseOutcome::NoAnswer);
        }
    }

    /// The link went down: no answer can come.
    pub fn on_link_down(&mut self) {
        if self.outcome.is_none() {
            self.outcome = Some(ReleaseOutcome::NoAnswer);
        }
    }
}
