//! The `gather` verdict (pure): exit 0 when no server failed what it was asked for, else 1,
//! with one summary line.

use crate::candidate::{Candidate, CandidateType};
use crate::model::{Expectation, ServerSummary, Verdict};

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
    use crate::model::Phase;

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
}
