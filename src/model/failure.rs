//! Failures as the report shows them: the [`Phase`] of a probe that failed and, for `gather`,
//! the error event with the STUN/TURN error code, the reason and a plain cause. Explaining a
//! failure (which cause for which code or error) is the probing layer's job (`probe::explain`).

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

/// An error event: one server URL failed at one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// The server URL (never with credentials).
    pub url: String,
    /// The candidate that was being gathered: `srflx` (Binding) or `relay` (Allocate). A UDP
    /// TURN URL is asked for both, so one silent server can give two errors.
    pub candidate: crate::candidate::CandidateType,
    /// The server address tried, when resolution got that far.
    pub address: Option<String>,
    /// Which phase failed.
    pub phase: Phase,
    /// The STUN/TURN ERROR-CODE, when the server sent one.
    pub code: Option<u16>,
    /// The server's reason phrase, or our own short technical reason.
    pub reason: Option<String>,
    /// The plain-language cause.
    pub cause: String,
    /// Milliseconds since the run started.
    pub elapsed_ms: f64,
}
