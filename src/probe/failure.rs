//! One mapping from every way a probe can end without its answer to a [`Failure`] with its
//! phase: a wait that stopped (deadline, Ctrl-C, a closed or broken link), a TURN operation
//! that failed, a DNS lookup that failed, a link that could not be opened. `gather` and `check`
//! both call these, so the same event reads the same in both.

use std::io;

use super::explain::{
    explain_code, explain_connect, explain_io, explain_no_answer, local_exhaustion, ErrorContext,
};
use crate::ice_url::Protocol;
use crate::model::{Failure, Phase};
use crate::net::dns::DnsError;
use crate::net::driver::{LinkDown, Stop};
use crate::net::open::{OpenError, OpenFailure};
use crate::net::tls::TlsError;
use crate::proto::turn::{TurnFailure, TurnOp};

/// The failure of an operation in phase `op` whose wait ended with `stop` before the answer.
/// `rejected` summarises replies the machine discarded (so "silent" and "answered garbage"
/// differ).
///
/// - the deadline: phase `timeout`; the cause says the server was silent (or what it sent
///   instead of an answer);
/// - Ctrl-C or SIGTERM: the operation's own phase (it was interrupted, it did not time out);
/// - a closed stream, like a reset one: phase `connect` — the connection failed, not the
///   protocol;
/// - another I/O error: as [`explain_io`] says.
pub fn stop_failure(
    stop: &Stop,
    op: Phase,
    proto: Protocol,
    port: u16,
    rejected: Option<&str>,
) -> Failure {
    match stop {
        Stop::Deadline | Stop::Done => Failure::new(
            Phase::Timeout,
            rejected.map(|_| "replies rejected".to_string()),
            explain_no_answer(proto, port, None, rejected),
        ),
        Stop::Cancelled => Failure::new(
            op,
            Some("cancelled".into()),
            "interrupted (Ctrl-C or SIGTERM) before the server answered",
        ),
        Stop::Link {
            down: LinkDown::Closed,
            ..
        } => Failure::new(
            Phase::Connect,
            Some("connection closed".into()),
            "the server closed the connection without answering",
        ),
        Stop::Link {
            down: LinkDown::Io(e),
            ..
        } => {
            let (phase, cause) = explain_io(proto, port, e);
            Failure::new(phase, Some(e.to_string()), cause)
        }
    }
}

/// The phase a TURN operation belongs to when it fails on its own.
fn turn_phase(op: TurnOp) -> Phase {
    match op {
        TurnOp::Allocate => Phase::TurnAllocate,
        TurnOp::CreatePermission => Phase::Permission,
        TurnOp::ChannelBind => Phase::Channel,
        TurnOp::Release => Phase::Release,
        TurnOp::Binding => Phase::Stun,
    }
}

/// A failed TURN-client operation (pure): its phase (401/438/441 are authentication), its code
/// and reason, and the cause. `ctx` carries what refines 401 causes.
pub fn turn_failure(
    op: TurnOp,
    failure: &TurnFailure,
    proto: Protocol,
    port: u16,
    ctx: &ErrorContext,
) -> Failure {
    let phase = turn_phase(op);
    match failure {
        TurnFailure::Rejected(e) => {
            let phase = if matches!(e.code, 401 | 438 | 441) {
                Phase::TurnAuth
            } else {
                phase
            };
            Failure {
                phase,
                code: Some(e.code),
                reason: Some(e.reason.clone()),
                cause: explain_code(phase, e.code, &ctx.with_alternate(e.alternate_server)),
            }
        }
        TurnFailure::Timeout { rejected } => Failure::new(
            Phase::Timeout,
            rejected.as_ref().map(|_| "replies rejected".to_string()),
            explain_no_answer(proto, port, None, rejected.as_deref()),
        ),
        TurnFailure::NoCredentials { realm } => Failure {
            phase: Phase::TurnAuth,
            code: Some(401),
            reason: realm.as_ref().map(|r| format!("realm {r:?}")),
            cause: "the TURN server requires credentials: pass --username and --credential (or --turn-secret)".into(),
        },
        TurnFailure::Protocol(p) => Failure::new(
            phase,
            Some(p.clone()),
            format!("the server's reply broke the STUN/TURN protocol: {p}"),
        ),
    }
}

/// A failed lookup of a server's name: phase `timeout` when the deadline cut it short, else
/// `dns`.
pub fn dns_failure(e: &DnsError) -> Failure {
    let phase = match e {
        DnsError::Timeout { .. } => Phase::Timeout,
        _ => Phase::Dns,
    };
    Failure::new(phase, Some(e.to_string()), e.to_string())
}

/// Which stage of opening a link failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenStage {
    /// The local socket or the TCP connect.
    Connect,
    /// The TLS handshake (the TCP connect before it took `connect`, when there was one) or the
    /// DTLS handshake.
    Tls {
        /// The TCP connect time; `None` for DTLS.
        connect: Option<std::time::Duration>,
    },
}

/// A link that could not be opened (`port` is the server's): the stage that failed and why.
pub fn open_failure(e: &OpenError, port: u16) -> (OpenStage, Failure) {
    match &e.failure {
        OpenFailure::NoSocket => (
            OpenStage::Connect,
            Failure::new(
                Phase::Connect,
                Some("no UDP socket".into()),
                "no local UDP socket of the server's address family",
            ),
        ),
        OpenFailure::Socket(err) => (
            OpenStage::Connect,
            Failure::new(
                Phase::Connect,
                Some(err.to_string()),
                local_exhaustion(err)
                    .unwrap_or_else(|| format!("cannot open a local UDP socket: {err}")),
            ),
        ),
        OpenFailure::Connect(err) => {
            let phase = if err.kind() == io::ErrorKind::TimedOut {
                Phase::Timeout
            } else {
                Phase::Connect
            };
            (
                OpenStage::Connect,
                Failure::new(phase, Some(err.to_string()), explain_connect(err, port)),
            )
        }
        OpenFailure::Handshake { error, connect } => {
            let phase = match error {
                TlsError::Timeout | TlsError::DtlsTimeout => Phase::Timeout,
                _ => Phase::Tls,
            };
            (
                OpenStage::Tls { connect: *connect },
                Failure::new(phase, Some(error.to_string()), error.cause()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same event is the same failure wherever it happens: the phase each stop gives,
    /// for the operations gather and check wait on.
    #[test]
    fn every_stop_has_one_phase() {
        let closed = || Stop::Link {
            link: 0,
            down: LinkDown::Closed,
        };
        let reset = || Stop::Link {
            link: 1,
            down: LinkDown::Io(io::ErrorKind::ConnectionReset.into()),
        };
        // (stop, phase of the operation waited on, phase reported, reason)
        let cases: Vec<(Stop, Phase, Phase, Option<&str>)> = vec![
            (Stop::Deadline, Phase::Stun, Phase::Timeout, None),
            (Stop::Deadline, Phase::TurnAllocate, Phase::Timeout, None),
            (Stop::Done, Phase::Permission, Phase::Timeout, None),
            (Stop::Cancelled, Phase::Stun, Phase::Stun, Some("cancelled")),
            (
                Stop::Cancelled,
                Phase::TurnAllocate,
                Phase::TurnAllocate,
                Some("cancelled"),
            ),
            (
                Stop::Cancelled,
                Phase::Relay,
                Phase::Relay,
                Some("cancelled"),
            ),
            (
                closed(),
                Phase::Stun,
                Phase::Connect,
                Some("connection closed"),
            ),
            (
                closed(),
                Phase::TurnAllocate,
                Phase::Connect,
                Some("connection closed"),
            ),
            (
                reset(),
                Phase::TurnAllocate,
                Phase::Connect,
                Some("connection reset"),
            ),
        ];
        for (stop, op, phase, reason) in cases {
            let f = stop_failure(&stop, op, Protocol::Tcp, 3478, None);
            assert_eq!(f.phase, phase, "{stop:?} during {op}");
            assert_eq!(f.code, None, "{stop:?}");
            assert_eq!(f.reason.as_deref(), reason, "{stop:?} during {op}");
        }
        let garbled = stop_failure(
            &Stop::Deadline,
            Phase::Stun,
            Protocol::Udp,
            3478,
            Some("2 replies with a bad FINGERPRINT"),
        );
        assert_eq!(garbled.reason.as_deref(), Some("replies rejected"));
        assert!(garbled.cause.contains("bad FINGERPRINT"), "{garbled:?}");
        let silent = stop_failure(&Stop::Deadline, Phase::Stun, Protocol::Udp, 3478, None);
        assert!(
            silent.cause.starts_with("server silent on UDP 3478"),
            "{silent:?}"
        );
    }

    #[test]
    fn open_failures_name_their_stage() {
        let err = |failure| OpenError {
            failure,
            elapsed: std::time::Duration::ZERO,
        };
        let refused = err(OpenFailure::Connect(
            io::ErrorKind::ConnectionRefused.into(),
        ));
        let (stage, f) = open_failure(&refused, 5349);
        assert_eq!((stage, f.phase), (OpenStage::Connect, Phase::Connect));
        assert!(f.cause.contains("nothing listening on TCP 5349"), "{f:?}");
        let slow = err(OpenFailure::Connect(io::ErrorKind::TimedOut.into()));
        assert_eq!(open_failure(&slow, 3478).1.phase, Phase::Timeout);
        let ms = std::time::Duration::from_millis(3);
        let stalled = err(OpenFailure::Handshake {
            error: TlsError::Timeout,
            connect: Some(ms),
        });
        let (stage, f) = open_failure(&stalled, 5349);
        assert_eq!(stage, OpenStage::Tls { connect: Some(ms) });
        assert_eq!(f.phase, Phase::Timeout);
        let emfile = err(OpenFailure::Socket(io::Error::from_raw_os_error(
            libc::EMFILE,
        )));
        assert!(open_failure(&emfile, 3478)
            .1
            .cause
            .contains("the server was not reached"));
    }

    #[test]
    fn turn_failures_map_to_phases() {
        use crate::proto::stun::ErrorCode;
        use crate::proto::turn::{TurnFailure, TurnOp};
        let rejected = |code| {
            TurnFailure::Rejected(ErrorCode {
                code,
                reason: "r".into(),
                alternate_server: None,
            })
        };
        let ctx = ErrorContext::default();
        let cases = [
            (TurnOp::Allocate, rejected(401), Phase::TurnAuth, Some(401)),
            (TurnOp::Allocate, rejected(438), Phase::TurnAuth, Some(438)),
            (
                TurnOp::Allocate,
                rejected(486),
                Phase::TurnAllocate,
                Some(486),
            ),
            (
                TurnOp::CreatePermission,
                rejected(403),
                Phase::Permission,
                Some(403),
            ),
            (
                TurnOp::ChannelBind,
                rejected(400),
                Phase::Channel,
                Some(400),
            ),
            (TurnOp::Binding, rejected(420), Phase::Stun, Some(420)),
            (
                TurnOp::Release,
                TurnFailure::Timeout { rejected: None },
                Phase::Timeout,
                None,
            ),
            (
                TurnOp::Allocate,
                TurnFailure::NoCredentials { realm: None },
                Phase::TurnAuth,
                Some(401),
            ),
            (
                TurnOp::Allocate,
                TurnFailure::Protocol("x".into()),
                Phase::TurnAllocate,
                None,
            ),
        ];
        for (op, failure, phase, code) in cases {
            let e = turn_failure(op, &failure, Protocol::Udp, 3478, &ctx);
            assert_eq!((e.phase, e.code), (phase, code), "{op:?} {failure:?}");
            assert!(!e.cause.is_empty());
        }
    }
}
