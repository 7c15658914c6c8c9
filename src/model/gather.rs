//! The `gather` report: the events of a trickle-ICE gathering (start, candidate, error,
//! released, summary) and the final report with one summary per server.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::candidate::{Candidate, CandidateType};
use crate::ice_url::ServerUrl;

use super::{Failure, Family, Outcome, Phase, Report};

/// Version of the gather report and events. Bump on any incompatible change.
pub const GATHER_SCHEMA_VERSION: u32 = 1;

/// One streamed `gather` event (`--format ndjson` prints each as `{"type": ..., "data": ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum GatherEvent {
    /// The run started: what will be probed.
    Start(GatherStart),
    /// A candidate arrived (trickle).
    Candidate(Candidate),
    /// A server failed at some phase (the `icecandidateerror` a browser never gives you).
    Error(GatherError),
    /// An allocation was released on a server (Refresh LIFETIME 0 answered).
    Released(Released),
    /// The run ended; the full report.
    Summary(Box<GatherReport>),
}

/// What a gather is about to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatherStart {
    /// Subcommand: `gather`.
    pub command: String,
    /// Server URLs, without credentials.
    pub servers: Vec<String>,
    /// The deadline for the whole run, in milliseconds.
    pub timeout_ms: u64,
    /// ICE transport policy "relay": only relay candidates.
    pub relay_only: bool,
    /// Address families gathered.
    pub families: Vec<Family>,
    /// TLS certificates are not verified (`--insecure`).
    pub insecure_tls: bool,
}

/// An error event: one server URL failed at one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatherError {
    /// The server URL (never with credentials).
    pub url: String,
    /// The candidate that was being gathered: `srflx` (Binding) or `relay` (Allocate). A UDP
    /// TURN URL is asked for both, so one silent server can give two errors.
    pub candidate: CandidateType,
    /// The server address tried, when resolution got that far.
    pub address: Option<SocketAddr>,
    /// What failed, and why.
    #[serde(flatten)]
    pub failure: Failure,
    /// Milliseconds since the run started.
    pub elapsed_ms: f64,
}

/// A released allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Released {
    /// The TURN URL.
    pub url: String,
    /// The relayed address that was released.
    pub relayed: SocketAddr,
    /// Milliseconds since the run started.
    pub elapsed_ms: f64,
}

/// Whether a server gave a candidate it was asked for: obtained (when), failed (the phase;
/// the details are in the errors list), or not checked (why). Unknown is never false.
pub type Gathered = Outcome<Obtained, FailedAt>;

/// When a candidate was obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obtained {
    /// Milliseconds since the run started.
    pub elapsed_ms: f64,
}

/// Where a candidate failed; the whole [`Failure`] is in the report's errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailedAt {
    /// The phase that failed.
    pub phase: Phase,
    /// The plain-language cause.
    pub cause: String,
}

impl From<&Failure> for FailedAt {
    fn from(f: &Failure) -> FailedAt {
        FailedAt {
            phase: f.phase,
            cause: f.cause.clone(),
        }
    }
}

/// Per-server outcome of a gather.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSummary {
    /// The URL.
    pub url: ServerUrl,
    /// srflx from this server (STUN and TURN URLs both give one, as in a browser).
    pub srflx: Gathered,
    /// relay from this server (TURN URLs only).
    pub relay: Gathered,
    /// Whether the allocation was released (`None` when there was none).
    pub released: Option<bool>,
}

/// What a `gather` report holds (inside the [`Report`] envelope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatherBody {
    /// The run's parameters.
    pub run: GatherStart,
    /// Wall time of the run in milliseconds.
    pub duration_ms: f64,
    /// The deadline cut the run short.
    pub timed_out: bool,
    /// Candidates in arrival order.
    pub candidates: Vec<Candidate>,
    /// Errors in arrival order.
    pub errors: Vec<GatherError>,
    /// Per-server outcomes.
    pub servers: Vec<ServerSummary>,
    /// What to fix: each distinct cause once with every URL that has it, in the order the
    /// causes first appeared (errors, then failed candidates no error explained).
    #[serde(default)]
    pub fix: Vec<Fix>,
}

/// One thing to fix: a cause and the servers that have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    /// The plain-language cause.
    pub cause: String,
    /// The server URLs it applies to, in first-seen order.
    pub urls: Vec<String>,
}

/// The final `gather` report (`--format json`).
pub type GatherReport = Report<GatherBody>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_envelope_shape() {
        let e = GatherEvent::Released(Released {
            url: "turn:h".into(),
            relayed: "198.18.0.1:49152".parse().unwrap(),
            elapsed_ms: 3.0,
        });
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "released");
        assert_eq!(v["data"]["url"], "turn:h");
        let n = serde_json::to_value(Gathered::not_checked("r")).unwrap();
        assert_eq!(n["status"], "not-checked");
    }
}
