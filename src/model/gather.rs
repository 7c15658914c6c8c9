//! The `gather` report: the events of a trickle-ICE gathering (start, candidate, error,
//! released, summary) and the final report with one summary per server.

use serde::{Deserialize, Serialize};

use crate::candidate::Candidate;

use super::{Failure, Phase, Verdict};

/// Version of the JSON report and NDJSON events. Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// One streamed event (`--format ndjson` prints each as `{"type": ..., "data": ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "data",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum Event {
    /// The run started: what will be probed.
    Start(RunInfo),
    /// A candidate arrived (trickle).
    Candidate(Candidate),
    /// A server failed at some phase (the `icecandidateerror` a browser never gives you).
    Error(Failure),
    /// An allocation was released on a server (Refresh LIFETIME 0 answered).
    Released(Released),
    /// The run ended; the full report.
    Summary(GatherReport),
}

/// What a run is about to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    /// Subcommand: `gather`.
    pub command: String,
    /// Server URLs, without credentials.
    pub servers: Vec<String>,
    /// The deadline for the whole run, in milliseconds.
    pub timeout_ms: u64,
    /// ICE transport policy "relay": only relay candidates.
    pub relay_only: bool,
    /// Address families gathered: "ipv4", "ipv6".
    pub families: Vec<String>,
    /// TLS certificates are not verified (`--insecure`).
    pub insecure_tls: bool,
}

/// A released allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Released {
    /// The TURN URL.
    pub url: String,
    /// The relayed address that was released.
    pub relayed: String,
    /// Milliseconds since the run started.
    pub elapsed_ms: f64,
}

/// Whether one expected result was obtained. Unknown is never reported as false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Expectation {
    /// Obtained at `elapsed_ms`.
    Ok {
        /// Milliseconds since the run started.
        elapsed_ms: f64,
    },
    /// Failed at `phase` (details in the errors list).
    Failed {
        /// The phase that failed.
        phase: Phase,
        /// The plain-language cause.
        cause: String,
    },
    /// Not attempted, and why (e.g. `--relay-only` skips srflx).
    NotChecked {
        /// Why it was not checked.
        reason: String,
    },
}

impl Expectation {
    /// Whether this counts against the run.
    pub fn is_failed(&self) -> bool {
        matches!(self, Expectation::Failed { .. })
    }
}

/// Per-server outcome of a gather.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSummary {
    /// The URL.
    pub url: String,
    /// srflx from this server (STUN and TURN URLs both give one, as in a browser).
    pub srflx: Expectation,
    /// relay from this server (TURN URLs only).
    pub relay: Expectation,
    /// Whether the allocation was released (`None` when there was none).
    pub released: Option<bool>,
}

/// The final `gather` report (`--format json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatherReport {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `gather`.
    pub command: String,
    /// iceprobe's version.
    pub iceprobe_version: String,
    /// The run's parameters.
    pub run: RunInfo,
    /// Wall time of the run in milliseconds.
    pub duration_ms: f64,
    /// The deadline cut the run short.
    pub timed_out: bool,
    /// Candidates in arrival order.
    pub candidates: Vec<Candidate>,
    /// Errors in arrival order.
    pub errors: Vec<Failure>,
    /// Per-server outcomes.
    pub servers: Vec<ServerSummary>,
    /// `--expect` results in the order given (absent from JSON without `--expect`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<super::expect::AssertionResult>,
    /// The verdict.
    pub verdict: Verdict,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_envelope_shape() {
        let e = Event::Released(Released {
            url: "turn:h".into(),
            relayed: "198.18.0.1:49152".into(),
            elapsed_ms: 3.0,
        });
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "released");
        assert_eq!(v["data"]["url"], "turn:h");
        let n = serde_json::to_value(Expectation::NotChecked { reason: "r".into() }).unwrap();
        assert_eq!(n["status"], "not-checked");
    }
}
