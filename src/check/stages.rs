//! The stages of a check row as values: the blank row (every stage "not reached" or "not
//! applicable"), skipping what an earlier failure made unreachable, and the mapping of each way
//! a stage can fail — a driver stop, a TURN error response or timeout, the echo peer's failed
//! allocation — to a [`Stage::Failed`] with its phase, code, reason and cause.

use std::time::Duration;

use super::probe::RowInput;
use crate::failure::{explain_io, explain_no_answer, explain_turn, ErrorContext, Phase};
use crate::ice_url::Protocol;
use crate::net::driver::Stop;
use crate::proto::turn::{TurnFailure, TurnOp};
use crate::report::check::*;

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(super) fn failed<T>(
    ms: Option<f64>,
    phase: Phase,
    code: Option<u16>,
    reason: Option<String>,
    cause: String,
) -> Stage<T> {
    Stage::Failed {
        ms,
        phase,
        code,
        reason,
        cause,
    }
}

/// A fresh row with every stage not checked (yet).
pub(super) fn blank(input: &RowInput) -> CheckRow {
    let turn = input.probed.is_turn();
    let na_turn = if turn {
        "not reached"
    } else {
        "not applicable: stun: URL"
    };
    CheckRow {
        url: input.url.to_string(),
        probed_url: input.probed.to_string(),
        family: if input.addr.is_ipv4() { "ipv4" } else { "ipv6" }.into(),
        address: input.addr.to_string(),
        transport: input.probed.protocol(),
        turn,
        dns: input.dns.clone(),
        connect: Stage::not_checked(if input.probed.protocol() == Protocol::Udp {
            "not applicable: UDP"
        } else {
            "not reached"
        }),
        tls: Stage::not_checked(if input.probed.protocol() == Protocol::Tls {
            "not reached"
        } else {
            "not applicable: no TLS"
        }),
        binding: Stage::not_checked("not reached"),
        challenge: Stage::not_checked(na_turn),
        allocate: Stage::not_checked(na_turn),
        permission: Stage::not_checked(na_turn),
        channel: Stage::not_checked(na_turn),
        send_echo: Stage::not_checked(na_turn),
        channel_echo: Stage::not_checked(na_turn),
        release: Stage::not_checked(na_turn),
        warnings: vec![],
        verdict: RowVerdict::Fail,
        alternate_server: None,
    }
}

/// A row that never started: the check's deadline passed while it waited for one of the
/// `--concurrency` slots. Its first stage fails as a timeout whose cause names the queue, so a
/// server that was never contacted is not reported as "timed out: a firewall drops it".
pub(super) fn not_started(input: &RowInput, concurrency: usize, timeout: Duration) -> CheckRow {
    let mut row = blank(input);
    let cause = format!(
        "not tried: the check's {} deadline passed while this row waited for one of {concurrency} slots (--concurrency); raise --timeout or --concurrency",
        humantime::format_duration(timeout)
    );
    let reason = Some("no free slot before the deadline".to_string());
    if input.probed.protocol() == Protocol::Udp {
        row.binding = failed(None, Phase::Timeout, None, reason, cause);
    } else {
        row.connect = failed(None, Phase::Timeout, None, reason, cause);
    }
    skip_rest(&mut row, "not tried before the deadline");
    row
}

/// Mark every not-yet-reached stage as skipped because an earlier one failed.
pub(super) fn skip_rest(row: &mut CheckRow, why: &str) {
    let reason = format!("skipped: {why}");
    macro_rules! skip {
        ($($f:ident),*) => {$(
            if let Stage::NotChecked { reason: r } = &row.$f {
                if r == "not reached" {
                    row.$f = Stage::not_checked(reason.clone());
                }
            }
        )*};
    }
    skip!(
        connect,
        tls,
        binding,
        challenge,
        allocate,
        permission,
        channel,
        send_echo,
        channel_echo,
        release
    );
}

pub(super) fn stage_cast<T, U>(s: &Stage<T>) -> Stage<U> {
    match s {
        Stage::Failed {
            ms,
            phase,
            code,
            reason,
            cause,
        } => Stage::Failed {
            ms: *ms,
            phase: *phase,
            code: *code,
            reason: reason.clone(),
            cause: cause.clone(),
        },
        Stage::NotChecked { reason } => Stage::NotChecked {
            reason: reason.clone(),
        },
        Stage::Ok { ms, .. } => Stage::Failed {
            ms: Some(*ms),
            phase: Phase::Timeout,
            code: None,
            reason: None,
            cause: "internal: unexpected state".into(),
        },
    }
}

/// The stage for a driver stop; `rejected` summarises replies the machine discarded.
pub(super) fn stop_stage<T>(
    stop: &Stop,
    proto: Protocol,
    port: u16,
    rejected: Option<String>,
) -> Stage<T> {
    match stop {
        Stop::Deadline | Stop::Done => failed(
            None,
            Phase::Timeout,
            None,
            rejected.as_ref().map(|_| "replies rejected".to_string()),
            explain_no_answer(proto, port, None, rejected.as_deref()),
        ),
        Stop::Cancelled => failed(
            None,
            Phase::Timeout,
            None,
            Some("cancelled".into()),
            "interrupted (Ctrl-C or SIGTERM)".into(),
        ),
        Stop::Closed => failed(
            None,
            Phase::Connect,
            None,
            Some("connection closed".into()),
            "the server closed the connection".into(),
        ),
        Stop::Io(e) => {
            let (phase, cause) = explain_io(proto, port, e);
            failed(None, phase, None, Some(e.to_string()), cause)
        }
    }
}

pub(super) fn turn_failure<T>(
    op: TurnOp,
    failure: TurnFailure,
    proto: Protocol,
    port: u16,
    ctx: &ErrorContext,
) -> Stage<T> {
    let e = explain_turn(op, &failure, proto, port, ctx);
    failed(None, e.phase, e.code, e.reason, e.cause)
}

/// A 300 redirect that will not be followed (it points back at the same server, or it is a
/// second redirect): the stage that recorded "redirected" becomes a failure with `cause`.
pub(super) fn redirect_not_followed(row: &mut CheckRow, cause: String) {
    fn fix<T>(s: &mut Stage<T>, cause: &str) -> bool {
        match s {
            Stage::NotChecked { reason } if reason.starts_with("300 Try Alternate") => {
                *s = failed(
                    None,
                    Phase::TurnAllocate,
                    Some(300),
                    Some("Try Alternate".into()),
                    cause.to_string(),
                );
                true
            }
            _ => false,
        }
    }
    if !fix(&mut row.challenge, &cause) {
        fix(&mut row.allocate, &cause);
    }
}

/// The permission stage when the second (peer) allocation, the echo test's far end, failed:
/// phase `relay`, the peer's own error code and reason, and its cause after what it was for.
/// A check row holds two allocations at once under one username, so a 486 names the quota it
/// needs.
pub(super) fn peer_allocation_failure(peer: Stage<Nothing>) -> Stage<Nothing> {
    let Stage::Failed {
        ms,
        code,
        reason,
        cause,
        ..
    } = peer
    else {
        return failed(
            None,
            Phase::Relay,
            None,
            None,
            "could not create the second (peer) allocation used for the echo test".into(),
        );
    };
    let mut cause =
        format!("could not create the second (peer) allocation used for the echo test: {cause}");
    if code == Some(486) {
        cause.push_str(
            "; a check row holds two allocations at once (the one under test and its echo peer), so user-quota must be at least 2",
        );
    }
    failed(ms, Phase::Relay, code, reason, cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_allocation_failures_keep_code_and_cause() {
        let quota = turn_failure::<Nothing>(
            TurnOp::Allocate,
            TurnFailure::Rejected(crate::proto::stun::ErrorCode {
                code: 486,
                reason: "Allocation Quota Reached".into(),
                alternate_server: None,
            }),
            Protocol::Udp,
            3478,
            &ErrorContext::default(),
        );
        let Stage::Failed {
            phase,
            code,
            reason,
            cause,
            ..
        } = peer_allocation_failure(quota)
        else {
            panic!("must fail");
        };
        assert_eq!((phase, code), (Phase::Relay, Some(486)));
        assert_eq!(reason.as_deref(), Some("Allocation Quota Reached"));
        assert!(cause.starts_with("could not create the second (peer) allocation"));
        assert!(cause.contains("allocation quota reached"), "{cause}");
        assert!(cause.contains("user-quota must be at least 2"), "{cause}");

        let silent = stop_stage::<Nothing>(&Stop::Deadline, Protocol::Udp, 3478, None);
        let Stage::Failed { code, cause, .. } = peer_allocation_failure(silent) else {
            panic!("must fail");
        };
        assert_eq!(code, None);
        assert!(cause.contains("server silent on UDP 3478"), "{cause}");
        assert!(!cause.contains("user-quota"), "{cause}");
    }
}
