//! Serde types of events and the final report, and the pure verdict over them.

use serde::{Deserialize, Serialize};

use crate::candidate::{Candidate, CandidateType};
use crate::failure::{Failure, Phase};

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

/// The overall verdict and exit code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verdict {
    /// Every server gave what it should.
    pub ok: bool,
    /// The process exit code: 0 ok, 1 some server failed.
    pub exit_code: i32,
    /// One line for humans and logs.
    pub summary: String,
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
    pub expectations: Vec<crate::expect::AssertionResult>,
    /// The verdict.
    pub verdict: Verdict,
}

/// Decide the verdict (pure): exit 0 when no server failed an expectation, else 1.
pub fn verdict(servers: &[ServerSummary], candidates: &[Candidate]) -> Verdict {
    let failed: Vec<&str> = servers
        .iter()
        .filter(|s| s.srflx.is_failed() || s.relay.is_failed())
        .map(|s| s.url.as_str())
        .collect();
    let count = |k| candidates.iter().filter(|c| c.kind == k).count();
    let counts = format!(
        "{} host, {} srflx, {} relay",
        count(CandidateType::Host),
        count(CandidateType::Srflx),
        count(CandidateType::Relay)
    );
    // A server with nothing checked (e.g. TURN over DTLS, which browsers do not use) neither
    // failed nor answered.
    let unchecked = servers
        .iter()
        .filter(|s| {
            matches!(s.srflx, Expectation::NotChecked { .. })
                && matches!(s.relay, Expectation::NotChecked { .. })
        })
        .count();
    if failed.is_empty() {
        let answered = match (unchecked, servers.len() - unchecked) {
            (0, _) => "every server answered".to_owned(),
            (n, 0) => format!("no server was checked ({n} not checked: see the servers table)"),
            (n, a) => format!("{a} answered, {n} not checked"),
        };
        Verdict {
            ok: true,
            exit_code: 0,
            summary: format!("ok: {counts}; {answered}"),
        }
    } else {
        Verdict {
            ok: false,
            exit_code: 1,
            summary: format!(
                "FAILED: {} of {} servers ({}); {counts}",
                failed.len(),
                servers.len(),
                failed.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(srflx: Expectation, relay: Expectation) -> ServerSummary {
        ServerSummary {
            url: "turn:h".into(),
            srflx,
            relay,
            released: None,
        }
    }

    #[test]
    fn verdict_table() {
        let ok = Expectation::Ok { elapsed_ms: 1.0 };
        let nc = Expectation::NotChecked {
            reason: "stun: URL".into(),
        };
        let bad = Expectation::Failed {
            phase: Phase::TurnAuth,
            cause: "x".into(),
        };
        let counts = "0 host, 0 srflx, 0 relay";
        let cases = [
            (
                vec![server(ok.clone(), nc.clone())],
                0,
                "every server answered",
            ),
            (
                vec![server(ok.clone(), ok.clone())],
                0,
                "every server answered",
            ),
            // Nothing checked is neither a failure nor an answer.
            (
                vec![server(nc.clone(), nc.clone())],
                0,
                "no server was checked (1 not checked: see the servers table)",
            ),
            (
                vec![
                    server(ok.clone(), nc.clone()),
                    server(nc.clone(), nc.clone()),
                ],
                0,
                "1 answered, 1 not checked",
            ),
            (vec![server(ok.clone(), bad.clone())], 1, "FAILED: 1 of 1"),
            (vec![server(bad.clone(), nc.clone())], 1, "FAILED: 1 of 1"),
            (
                vec![server(ok.clone(), ok.clone()), server(ok, bad)],
                1,
                "FAILED: 1 of 2",
            ),
        ];
        for (servers, code, summary) in cases {
            let v = verdict(&servers, &[]);
            assert_eq!(v.exit_code, code, "{servers:?}");
            assert_eq!(v.ok, code == 0);
            let want = if code == 0 {
                format!("ok: {counts}; {summary}")
            } else {
                summary.to_owned()
            };
            assert!(v.summary.starts_with(&want), "{} vs {want}", v.summary);
        }
    }

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
