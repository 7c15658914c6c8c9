//! The stages of a check row as values (pure): the blank row (every stage "not reached" or "not
//! applicable"), a row that never started, skipping what an earlier failure made unreachable,
//! a redirect not followed, and the echo peer's failed allocation as the permission stage.

use std::time::Duration;

use super::plan::RowInput;
use crate::ice_url::{Host, Protocol};
use crate::model::check::*;
use crate::model::{Failure, Family, Outcome, Phase, Reason};
use crate::net::dns::Families;

/// A stage not reached yet, or, when it does not apply to this row, not applicable (`why`).
fn pending(applies: bool, why: &str) -> Reason {
    if applies {
        Reason::NotReached
    } else {
        Reason::not_applicable(why)
    }
}

/// A fresh row with every stage not checked (yet): not reached, or not applicable to this row.
pub(super) fn blank(input: &RowInput) -> CheckRow {
    let turn = input.probed.is_turn();
    let proto = input.probed.protocol();
    let turn_stage = || pending(turn, "stun: URL");
    CheckRow {
        url: input.url.clone(),
        probed_url: input.probed.clone(),
        family: Some(Family::of(input.addr.ip())),
        address: Some(input.addr),
        transport: proto,
        turn,
        dns: input.dns.clone(),
        connect: Stage::not_checked(pending(proto.is_stream(), "UDP")),
        tls: Stage::not_checked(pending(proto.is_secure(), "no TLS")),
        binding: Stage::not_checked(Reason::NotReached),
        challenge: Stage::not_checked(turn_stage()),
        allocate: Stage::not_checked(turn_stage()),
        permission: Stage::not_checked(turn_stage()),
        channel: Stage::not_checked(turn_stage()),
        send_echo: Stage::not_checked(turn_stage()),
        channel_echo: Stage::not_checked(turn_stage()),
        release: Stage::not_checked(turn_stage()),
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
    let failure = Failure::new(
        Phase::Timeout,
        Some("no free slot before the deadline".into()),
        format!(
            "not tried: the check's {} deadline passed while this row waited for one of {concurrency} slots (--concurrency); raise --timeout or --concurrency",
            humantime::format_duration(timeout)
        ),
    );
    match input.probed.protocol() {
        Protocol::Udp => row.binding = Stage::fail(None, failure),
        Protocol::Dtls => row.tls = Stage::fail(None, failure),
        Protocol::Tcp | Protocol::Tls => row.connect = Stage::fail(None, failure),
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
    let fail = |ms, reason: Option<String>, cause: String| {
        Stage::fail(ms, Failure::new(Phase::Dns, reason, cause))
    };
    match dns {
        Outcome::Failed(_) => dns,
        Outcome::Ok(p) => fail(
            Some(p.ms),
            Some(format!("no {record} record")),
            format!("{host} has no {want} address ({record} record), and {ask}: add one to serve {want} clients, or drop {flag}"),
        ),
        Outcome::NotChecked { .. } => match host {
            Host::Ip(ip) => fail(
                None,
                Some(format!("{} literal", if ip.is_ipv4() { "IPv4" } else { "IPv6" })),
                format!("{host} is not an {want} address, and {ask}: give an {want} address, or drop {flag}"),
            ),
            Host::Name(_) => fail(None, None, format!("the lookup of {host} did not finish")),
        },
    }
}

/// Mark every not-yet-reached stage as skipped because an earlier one failed.
pub(super) fn skip_rest(row: &mut CheckRow, why: &str) {
    macro_rules! skip {
        ($($f:ident),*) => {$(
            if row.$f.reason() == Some(&Reason::NotReached) {
                row.$f = Stage::not_checked(Reason::skipped(why));
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

/// A 300 redirect that will not be followed (it points back at the same server, or it is a
/// second redirect): the stage that recorded "redirected" becomes a failure with `cause`.
pub(super) fn redirect_not_followed(row: &mut CheckRow, cause: String) {
    fn fix<T>(s: &mut Stage<T>, cause: &str) -> bool {
        if !matches!(s.reason(), Some(Reason::Redirected(_))) {
            return false;
        }
        *s = Stage::fail(
            None,
            Failure::new(Phase::TurnAllocate, Some("Try Alternate".into()), cause)
                .with_code(Some(300)),
        );
        true
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
    const WHAT: &str = "could not create the second (peer) allocation used for the echo test";
    let Outcome::Failed(StageFailure { ms, failure }) = peer else {
        return Stage::fail(None, Failure::new(Phase::Relay, None, WHAT));
    };
    let mut cause = format!("{WHAT}: {}", failure.cause);
    if failure.code == Some(486) {
        cause.push_str(
            "; a check row holds two allocations at once (the one under test and its echo peer), so user-quota must be at least 2",
        );
    }
    Stage::fail(
        ms,
        Failure::new(Phase::Relay, failure.reason, cause).with_code(failure.code),
    )
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
        let resolved = || {
            Stage::ok(
                3.5,
                DnsInfo {
                    addresses: vec!["198.18.0.1".parse().unwrap()],
                    srv: vec![],
                },
            )
        };
        let gone = || Stage::fail(Some(9.0), Failure::new(Phase::Dns, None, "NXDOMAIN"));
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
                Outcome::Failed(StageFailure { ms, failure }) => {
                    assert_eq!(failure.phase, Phase::Dns, "{what}");
                    assert_eq!(ms, want_ms, "{what}");
                    assert_eq!(failure.reason.as_deref(), want_reason, "{what}");
                    assert_eq!(failure.cause, want_cause, "{what}");
                }
                other => panic!("{what}: must fail, got {other:?}"),
            }
        }
    }

    #[test]
    fn peer_allocation_failures_keep_code_and_cause() {
        use crate::probe::explain::ErrorContext;
        use crate::probe::failure::{stop_failure, turn_failure};
        use crate::proto::turn::{TurnFailure, TurnOp};
        let quota = Stage::fail(
            None,
            turn_failure(
                TurnOp::Allocate,
                &TurnFailure::Rejected(crate::proto::stun::ErrorCode {
                    code: 486,
                    reason: "Allocation Quota Reached".into(),
                    alternate_server: None,
                }),
                Protocol::Udp,
                3478,
                &ErrorContext::default(),
            ),
        );
        let Outcome::Failed(StageFailure { failure, .. }) = peer_allocation_failure(quota) else {
            panic!("must fail");
        };
        assert_eq!((failure.phase, failure.code), (Phase::Relay, Some(486)));
        assert_eq!(failure.reason.as_deref(), Some("Allocation Quota Reached"));
        assert!(failure
            .cause
            .starts_with("could not create the second (peer) allocation"));
        assert!(
            failure.cause.contains("allocation quota reached"),
            "{failure:?}"
        );
        assert!(
            failure.cause.contains("user-quota must be at least 2"),
            "{failure:?}"
        );

        let silent = Stage::fail(
            None,
            stop_failure(
                &crate::net::driver::Stop::Deadline,
                Phase::TurnAllocate,
                Protocol::Udp,
                3478,
                None,
            ),
        );
        let Outcome::Failed(StageFailure { failure, .. }) = peer_allocation_failure(silent) else {
            panic!("must fail");
        };
        assert_eq!(failure.code, None);
        assert!(
            failure.cause.contains("server silent on UDP 3478"),
            "{failure:?}"
        );
        assert!(!failure.cause.contains("user-quota"), "{failure:?}");
    }

    #[test]
    fn skipping_touches_only_stages_not_reached() {
        let input = RowInput {
            url: "turn:198.18.0.1?transport=tcp".parse().unwrap(),
            probed: "turn:198.18.0.1?transport=tcp".parse().unwrap(),
            addr: "198.18.0.1:3478".parse().unwrap(),
            dns: Stage::not_checked("IP literal: no DNS"),
            username: None,
            password: None,
        };
        let mut row = blank(&input);
        row.connect = Stage::ok(1.0, Nothing {});
        row.tls = Stage::not_checked(Reason::not_applicable("no TLS"));
        skip_rest(&mut row, "no allocation");
        assert!(row.connect.is_ok());
        assert_eq!(row.tls.reason(), Some(&Reason::not_applicable("no TLS")));
        assert_eq!(
            row.binding.reason(),
            Some(&Reason::skipped("no allocation"))
        );
        assert_eq!(
            row.release.reason(),
            Some(&Reason::skipped("no allocation"))
        );
    }
}
