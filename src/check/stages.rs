//! The stages of a check row as values: the blank row (every stage "not reached" or "not
//! applicable"), skipping what an earlier failure made unreachable, and the mapping of each way
//! a stage can fail — a driver stop, a TURN error response or timeout, the echo peer's failed
//! allocation — to a [`Stage::Failed`] with its phase, code, reason and cause.

use std::time::Duration;

use super::probe::RowInput;
use crate::failure::{explain_io, explain_no_answer, explain_turn, ErrorContext};
use crate::ice_url::{Host, Protocol};
use crate::model::check::*;
use crate::model::Phase;
use crate::net::dns::Families;
use crate::net::driver::Stop;
use crate::proto::turn::{TurnFailure, TurnOp};

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
        connect: Stage::not_checked(if input.probed.protocol().is_stream() {
            "not reached"
        } else {
            "not applicable: UDP"
        }),
        tls: Stage::not_checked(if input.probed.protocol().is_secure() {
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
    match input.probed.protocol() {
        Protocol::Udp => row.binding = failed(None, Phase::Timeout, None, reason, cause),
        Protocol::Dtls => row.tls = failed(None, Phase::Timeout, None, reason, cause),
        Protocol::Tcp | Protocol::Tls => {
            row.connect = failed(None, Phase::Timeout, None, reason, cause)
        }
    }
    skip_rest(&mut row, "not tried before the deadline");
    row
}

/// The DNS stage of a server none of whose addresses is of an allowed family (`-4`/`-6`): a
/// failure, since the family asked for does not work there. Reporting the row as passed with
/// every stage "not checked" would make `check -6` exit 0 for a server without IPv6.
pub(super) fn no_address_of_family(
    host: &Host,
    dns: Stage<DnsInfo>,
    families: Families,
) -> Stage<DnsInfo> {
    let (want, record, flag) = if families.v6 && !families.v4 {
        ("IPv6", "AAAA", "-6")
    } else {
        ("IPv4", "A", "-4")
    };
    let ask = format!("{flag} asks for {want} only");
    match dns {
        Stage::Failed { .. } => dns,
        Stage::Ok { ms, .. } => failed(
            Some(ms),
            Phase::Dns,
            None,
            Some(format!("no {record} record")),
            format!("{host} has no {want} address ({record} record), and {ask}: add one to serve {want} clients, or drop {flag}"),
        ),
        Stage::NotChecked { .. } => match host {
            Host::Ip(ip) => failed(
                None,
                Phase::Dns,
                None,
                Some(format!("{} literal", if ip.is_ipv4() { "IPv4" } else { "IPv6" })),
                format!("{host} is not an {want} address, and {ask}: give an {want} address, or drop {flag}"),
            ),
            Host::Name(_) => failed(
                None,
                Phase::Dns,
                None,
                None,
                format!("the lookup of {host} did not finish"),
            ),
        },
    }
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
    fn a_server_without_the_family_asked_for_fails_its_dns_stage() {
        let v6 = Families {
            v4: false,
            v6: true,
        };
        let v4 = Families {
            v4: true,
            v6: false,
        };
        let name = Host::Name("turn.example.org".into());
        let lit4 = Host::Ip("198.18.0.1".parse().unwrap());
        let lit6 = Host::Ip("2001:db8::1".parse().unwrap());
        let resolved = || Stage::Ok {
            ms: 3.5,
            info: DnsInfo {
                addresses: vec!["198.18.0.1".into()],
                srv: vec![],
            },
        };
        let gone = || failed(Some(9.0), Phase::Dns, None, None, "NXDOMAIN".into());
        let literal = || Stage::not_checked("IP literal: no DNS");
        type Want = (Option<f64>, Option<&'static str>, &'static str);
        let cases: Vec<(&str, &Host, Stage<DnsInfo>, Families, Want)> = vec![
            ("-6, name with only A", &name, resolved(), v6, (Some(3.5), Some("no AAAA record"),
                "turn.example.org has no IPv6 address (AAAA record), and -6 asks for IPv6 only: add one to serve IPv6 clients, or drop -6")),
            ("-4, name with only AAAA", &name, resolved(), v4, (Some(3.5), Some("no A record"),
                "turn.example.org has no IPv4 address (A record), and -4 asks for IPv4 only: add one to serve IPv4 clients, or drop -4")),
            ("-6, IPv4 literal", &lit4, literal(), v6, (None, Some("IPv4 literal"),
                "198.18.0.1 is not an IPv6 address, and -6 asks for IPv6 only: give an IPv6 address, or drop -6")),
            ("-4, IPv6 literal", &lit6, literal(), v4, (None, Some("IPv6 literal"),
                "[2001:db8::1] is not an IPv4 address, and -4 asks for IPv4 only: give an IPv4 address, or drop -4")),
            ("a lookup that never finished", &name, Stage::not_checked("lookup did not finish"), v6,
                (None, None, "the lookup of turn.example.org did not finish")),
            ("a failed lookup keeps its own cause", &name, gone(), v6, (Some(9.0), None, "NXDOMAIN")),
        ];
        for (what, host, dns, families, (want_ms, want_reason, want_cause)) in cases {
            match no_address_of_family(host, dns, families) {
                Stage::Failed {
                    ms,
                    phase,
                    reason,
                    cause,
                    ..
                } => {
                    assert_eq!(phase, Phase::Dns, "{what}");
                    assert_eq!(ms, want_ms, "{what}");
                    assert_eq!(reason.as_deref(), want_reason, "{what}");
                    assert_eq!(cause, want_cause, "{what}");
                }
                other => panic!("{what}: must fail, got {other:?}"),
            }
        }
    }

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
