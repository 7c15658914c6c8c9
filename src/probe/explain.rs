//! Causes as users need them: for a STUN/TURN error code, a silent server, a connect or I/O
//! error, the plain-language sentence that says what is wrong and what to do. Pure functions;
//! [`super::failure`] puts them together with their phase into a `Failure`.

use crate::ice_url::Protocol;
use crate::model::Phase;

/// What we knew when an error response arrived; refines the explanation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorContext {
    /// Credentials were minted from a REST shared secret (`--turn-secret`).
    pub rest_credentials: bool,
    /// ALTERNATE-SERVER from a 300 response.
    pub alternate_server: Option<String>,
    /// The username is a REST-API username whose expiry time (Unix seconds) has passed; see
    /// [`expired_rest_username`].
    pub rest_expired_at: Option<u64>,
}

impl ErrorContext {
    /// The same context, with the ALTERNATE-SERVER of a 300 response.
    pub fn with_alternate(&self, alt: Option<std::net::SocketAddr>) -> ErrorContext {
        ErrorContext {
            alternate_server: alt.map(|a| a.to_string()),
            ..self.clone()
        }
    }
}

/// Plain-language cause of a STUN/TURN ERROR-CODE (RFC 8489 §14.8, RFC 8656 §19, RFC 6156 §10).
pub fn explain_code(phase: Phase, code: u16, ctx: &ErrorContext) -> String {
    match code {
        300 => match &ctx.alternate_server {
            Some(alt) => format!("the server redirects clients to ALTERNATE-SERVER {alt}: probe that server directly"),
            None => "the server answered 300 Try Alternate without an ALTERNATE-SERVER".into(),
        },
        400 => "the server rejected the request as malformed (400 Bad Request)".into(),
        401 => match ctx.rest_expired_at {
            Some(at) => format!(
                "the TURN REST credential expired at {} (the username starts with its expiry time {at}): fetch or mint a fresh one (check the clocks and --turn-ttl)",
                crate::net::tls::rfc3339(i64::try_from(at).unwrap_or(i64::MAX))
            ),
            None if ctx.rest_credentials => "TURN REST credential rejected: the shared secret differs from the server's static-auth-secret, or the credential has expired (check the clocks and --turn-ttl)".into(),
            None => "wrong TURN credentials: the server rejected the username or password".into(),
        },
        403 if phase == Phase::Permission || phase == Phase::Channel => {
            "the server forbids relaying to this peer address (denied-peer-ip, or a private range not in allowed-peer-ip)".into()
        }
        403 => "the server forbids this request for this user (403 Forbidden)".into(),
        420 => "the server does not understand a comprehension-required attribute (420 Unknown Attribute)".into(),
        437 => "allocation mismatch: the server already has (or no longer has) an allocation for this 5-tuple".into(),
        438 => "the server kept rejecting our nonce as stale (438), even after a retry".into(),
        440 => "the server cannot allocate a relay of the requested address family (440)".into(),
        441 => "wrong credentials: the username differs from the one that created the allocation (441)".into(),
        442 => "the server does not relay the requested transport (442 Unsupported Transport Protocol)".into(),
        443 => "the peer address family differs from the relay's (443)".into(),
        446 => "connection already exists (446)".into(),
        447 => "connection to the peer timed out or failed (447)".into(),
        486 => "allocation quota reached: too many allocations for this user (user-quota/total-quota); earlier runs may not have released theirs".into(),
        487 => "role conflict (487)".into(),
        500 => "the server had an internal error (500)".into(),
        508 => "the server is out of relay ports (508 Insufficient Capacity): widen min-port/max-port or add capacity".into(),
        c => format!("the server answered with error {c}"),
    }
}

/// The expiry time (Unix seconds) of a TURN REST-API username (`<expiry>` or `<expiry>:<user>`,
/// as coturn's `use-auth-secret` expects) when it lies before `now_unix`; `None` for any other
/// username or a future expiry. Only plausible Unix times (from 2001-09-09, 10 digits and up)
/// count, so an ordinary name like `42:bob` is left alone.
pub fn expired_rest_username(username: &str, now_unix: u64) -> Option<u64> {
    let stamp = username.split_once(':').map_or(username, |(t, _)| t);
    if stamp.is_empty() || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let expiry: u64 = stamp.parse().ok()?;
    (expiry >= 1_000_000_000 && expiry < now_unix).then_some(expiry)
}

/// Plain-language cause when no valid answer came: `rejected` (a [`Rejects::summary`]) says the
/// server did answer, with replies that had to be discarded; without it the server was silent.
///
/// [`Rejects::summary`]: crate::proto::reject::Rejects::summary
pub fn explain_no_answer(
    proto: Protocol,
    port: u16,
    sends: Option<u32>,
    rejected: Option<&str>,
) -> String {
    match rejected {
        Some(r) => format!(
            "no valid STUN/TURN answer on {} {port}: {r}. Something answers, but not as a working STUN/TURN server: a broken or hostile server, or a middlebox rewriting packets",
            proto.as_str().to_uppercase()
        ),
        None => explain_silence(proto, port, sends),
    }
}

/// Plain-language cause when a server never answered.
pub fn explain_silence(proto: Protocol, port: u16, sends: Option<u32>) -> String {
    match proto {
        Protocol::Udp => {
            let tries = sends.map(|n| format!(" after {n} transmissions")).unwrap_or_default();
            format!("server silent on UDP {port}{tries}: blocked by a firewall or not listening")
        }
        Protocol::Tcp => format!(
            "connected to TCP {port} but no STUN/TURN answer: the service behind the port may not speak STUN/TURN"
        ),
        Protocol::Tls => format!(
            "TLS on port {port} completed but no STUN/TURN answer: the service behind TLS may not speak STUN/TURN"
        ),
        Protocol::Dtls => format!(
            "DTLS on UDP {port} completed but no STUN/TURN answer: the service behind DTLS may not speak STUN/TURN"
        ),
    }
}

/// The cause when an error is this machine running out of something (EMFILE, ENFILE, ENOBUFS,
/// ENOMEM), not the server failing: the server was never reached, so the cause must not blame
/// it (a row of "could not connect" for a local limit would send ops to the wrong machine).
pub fn local_exhaustion(e: &std::io::Error) -> Option<String> {
    let what = match e.raw_os_error()? {
        libc::EMFILE => "iceprobe ran out of file descriptors (ulimit -n)",
        libc::ENFILE => "the system ran out of file descriptors",
        libc::ENOBUFS | libc::ENOMEM => "the system ran out of socket buffer memory",
        _ => return None,
    };
    Some(format!(
        "{what}: the server was not reached; probe fewer servers at once (check --concurrency) or raise the limit"
    ))
}

/// Phase and cause for a link that failed mid-conversation.
pub fn explain_io(proto: Protocol, port: u16, e: &std::io::Error) -> (Phase, String) {
    if let Some(cause) = local_exhaustion(e) {
        return (Phase::Connect, cause);
    }
    let name = proto.as_str().to_uppercase();
    match e.kind() {
        std::io::ErrorKind::InvalidData => (
            Phase::Stun,
            format!("{e} on {name} {port}: the port serves another protocol, or a middlebox corrupts the stream"),
        ),
        std::io::ErrorKind::ConnectionReset => (
            Phase::Connect,
            format!("the server or a middlebox reset the {name} connection to port {port}"),
        ),
        _ => (Phase::Connect, format!("network error on {name} {port}: {e}")),
    }
}

/// Plain-language cause for a connect error.
pub fn explain_connect(e: &std::io::Error, port: u16) -> String {
    use std::io::ErrorKind::*;
    if let Some(cause) = local_exhaustion(e) {
        return cause;
    }
    match e.kind() {
        ConnectionRefused => format!("connection refused: nothing listening on TCP {port}"),
        TimedOut => {
            format!("TCP connect to port {port} timed out: a firewall drops it or the host is down")
        }
        HostUnreachable | NetworkUnreachable => {
            "no route to the server: check the address and the network".into()
        }
        ConnectionReset => "the connection was reset by the server or a middlebox".into(),
        AddrNotAvailable => "no local address of the right family to reach the server".into(),
        _ => format!("could not connect to TCP {port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_specific_causes() {
        let ctx = ErrorContext::default();
        let rest = ErrorContext {
            rest_credentials: true,
            ..Default::default()
        };
        let expired = ErrorContext {
            rest_expired_at: Some(1_700_000_000),
            ..Default::default()
        };
        let alt = ErrorContext {
            alternate_server: Some("198.18.0.2:3478".into()),
            ..Default::default()
        };
        let cases: &[(Phase, u16, &ErrorContext, &str)] = &[
            (Phase::TurnAuth, 401, &ctx, "wrong TURN credentials"),
            (Phase::TurnAuth, 401, &rest, "REST credential rejected"),
            (
                Phase::TurnAuth,
                401,
                &expired,
                "REST credential expired at 2023-11-14T22:13:20Z",
            ),
            (Phase::TurnAuth, 441, &ctx, "wrong credentials"),
            (Phase::TurnAuth, 438, &ctx, "stale"),
            (Phase::Permission, 403, &ctx, "denied-peer-ip"),
            (Phase::TurnAllocate, 403, &ctx, "forbids this request"),
            (Phase::TurnAllocate, 486, &ctx, "quota"),
            (Phase::TurnAllocate, 508, &ctx, "out of relay ports"),
            (Phase::TurnAllocate, 300, &alt, "198.18.0.2:3478"),
            (Phase::TurnAllocate, 440, &ctx, "address family"),
            (Phase::Stun, 420, &ctx, "Unknown Attribute"),
            (Phase::Stun, 599, &ctx, "error 599"),
        ];
        for (phase, code, ctx, want) in cases {
            let got = explain_code(*phase, *code, ctx);
            assert!(got.contains(want), "{phase} {code}: {got:?} lacks {want:?}");
        }
    }

    #[test]
    fn expired_rest_usernames_are_recognised() {
        let now = 1_700_000_000;
        let cases: &[(&str, Option<u64>)] = &[
            ("1699999999:bob", Some(1_699_999_999)),
            ("1699999999", Some(1_699_999_999)),
            ("1699999999:bob:with:colons", Some(1_699_999_999)),
            ("1700000000:bob", None), // expires now: not yet past
            ("1800000000:bob", None), // future
            ("alice", None),
            ("42:bob", None), // not a plausible Unix time
            ("+1699999999:bob", None),
            (":bob", None),
            ("", None),
            ("99999999999999999999999:bob", None), // overflows u64
        ];
        for (user, want) in cases {
            assert_eq!(expired_rest_username(user, now), *want, "{user:?}");
        }
    }

    #[test]
    fn silence_and_connect_causes() {
        assert_eq!(
            explain_silence(Protocol::Udp, 3478, Some(7)),
            "server silent on UDP 3478 after 7 transmissions: blocked by a firewall or not listening"
        );
        let kind = |k| std::io::Error::from(k);
        assert!(
            explain_connect(&kind(std::io::ErrorKind::ConnectionRefused), 5349)
                .contains("nothing listening on TCP 5349")
        );
        assert!(explain_connect(&kind(std::io::ErrorKind::TimedOut), 3478).contains("timed out"));
    }

    /// Running out of descriptors or buffers is ours, not the server's: every path that turns
    /// an I/O error into a cause says so, and none of them blames the server.
    #[test]
    fn local_exhaustion_is_never_blamed_on_the_server() {
        let os = std::io::Error::from_raw_os_error;
        let cases = [
            (
                libc::EMFILE,
                "iceprobe ran out of file descriptors (ulimit -n)",
            ),
            (libc::ENFILE, "the system ran out of file descriptors"),
            (libc::ENOBUFS, "the system ran out of socket buffer memory"),
            (libc::ENOMEM, "the system ran out of socket buffer memory"),
        ];
        for (errno, what) in cases {
            let want = format!("{what}: the server was not reached; probe fewer servers at once (check --concurrency) or raise the limit");
            assert_eq!(
                local_exhaustion(&os(errno)).as_deref(),
                Some(&*want),
                "errno {errno}"
            );
            assert_eq!(
                explain_connect(&os(errno), 3478),
                want,
                "connect, errno {errno}"
            );
            assert_eq!(
                explain_io(Protocol::Tcp, 3478, &os(errno)),
                (Phase::Connect, want.clone()),
                "io, errno {errno}"
            );
        }
        for errno in [
            libc::ECONNREFUSED,
            libc::ETIMEDOUT,
            libc::EHOSTUNREACH,
            libc::EPERM,
        ] {
            assert_eq!(local_exhaustion(&os(errno)), None, "errno {errno}");
        }
        assert_eq!(local_exhaustion(&std::io::ErrorKind::Other.into()), None);
    }
}
