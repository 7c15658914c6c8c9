//! Failures as the report shows them: the [`Phase`] of a probe that failed, and the one
//! [`Failure`] shape (phase, STUN/TURN error code, reason, plain cause). Explaining a failure —
//! which cause for which code or error — is the probing layer's job (`probe::explain`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where in the life of a probe something failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Resolving the server's host name.
    Dns,
    /// Opening the TCP connection (or the UDP socket).
    Connect,
    /// The TLS handshake or certificate verification.
    Tls,
    /// The STUN Binding exchange.
    Stun,
    /// TURN authentication (401/441/438 and missing credentials).
    TurnAuth,
    /// The TURN Allocate request after authentication.
    TurnAllocate,
    /// CreatePermission.
    Permission,
    /// ChannelBind.
    Channel,
    /// Data through the relay.
    Relay,
    /// Refresh with LIFETIME 0.
    Release,
    /// Nothing answered before the deadline.
    Timeout,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Phase::Dns => "dns",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Stun => "stun",
            Phase::TurnAuth => "turn-auth",
            Phase::TurnAllocate => "turn-allocate",
            Phase::Permission => "permission",
            Phase::Channel => "channel",
            Phase::Relay => "relay",
            Phase::Release => "release",
            Phase::Timeout => "timeout",
        };
        f.write_str(s)
    }
}

/// Why something failed, as every report says it: the phase, the STUN/TURN error code and the
/// server's reason phrase when there is one, and a plain-language cause. The one shape of a
/// failure: a gather error event and a failed check stage both carry it (flattened beside their
/// own fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// Which phase failed.
    pub phase: Phase,
    /// The STUN/TURN ERROR-CODE, when the server sent one.
    pub code: Option<u16>,
    /// The server's reason phrase, or our own short technical reason.
    pub reason: Option<String>,
    /// The plain-language cause.
    pub cause: String,
}

impl Failure {
    /// A failure with no error code.
    pub fn new(phase: Phase, reason: Option<String>, cause: impl Into<String>) -> Failure {
        Failure {
            phase,
            code: None,
            reason,
            cause: cause.into(),
        }
    }

    /// The same failure with this error code.
    pub fn with_code(self, code: Option<u16>) -> Failure {
        Failure { code, ..self }
    }

    /// The same failure in another phase.
    pub fn in_phase(self, phase: Phase) -> Failure {
        Failure { phase, ..self }
    }

    /// `turn-auth 401 Unauthorized`: the phase, then the code and the reason when there are.
    pub fn head(&self) -> String {
        format!("{}{}", self.phase, self.code_and_reason())
    }

    /// ` 401 Unauthorized`: the code and the reason, each after a space; empty without them.
    pub fn code_and_reason(&self) -> String {
        let mut s = String::new();
        if let Some(c) = self.code {
            s.push_str(&format!(" {c}"));
        }
        if let Some(r) = &self.reason {
            s.push_str(&format!(" {r}"));
        }
        s
    }
}
