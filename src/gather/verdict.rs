//! The `gather` verdict (pure): exit 0 when no server failed what it was asked for, else 1,
//! with one summary line; and what to fix.

use crate::candidate::{Candidate, CandidateType};
use crate::model::gather::{Fix, GatherError, ServerSummary};
use crate::model::{Outcome, Verdict};

/// What to fix (pure): one entry per distinct cause, naming every URL that has it, in the order
/// the causes first appeared: errors, then failed candidates that no error explained.
pub fn fix_list(errors: &[GatherError], servers: &[ServerSummary]) -> Vec<Fix> {
    let mut out: Vec<Fix> = Vec::new();
    let mut add = |cause: &str, url: &str| match out.iter_mut().find(|f| f.cause == cause) {
        Some(f) => {
            if !f.urls.iter().any(|u| u == url) {
                f.urls.push(url.to_string());
            }
        }
        None => out.push(Fix {
            cause: cause.to_string(),
            urls: vec![url.to_string()],
        }),
    };
    for e in errors {
        add(&e.failure.cause, &e.url);
    }
    for s in servers {
        for g in [&s.srflx, &s.relay] {
            if let Outcome::Failed(f) = g {
                add(&f.cause, &s.url.to_string());
            }
        }
    }
    out
}

/// Decide the verdict (pure): exit 0 when no server failed an expectation, else 1.
pub fn verdict(servers: &[ServerSummary], candidates: &[Candidate]) -> Verdict {
    let failed: Vec<String> = servers
        .iter()
        .filter(|s| s.srflx.is_failed() || s.relay.is_failed())
        .map(|s| s.url.to_string())
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
            matches!(s.srflx, Outcome::NotChecked { .. })
                && matches!(s.relay, Outcome::NotChecked { .. })
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
    use crate::model::gather::{FailedAt, Gathered, Obtained};
    use crate::model::{Failure, Phase};

    fn server(srflx: Gathered, relay: Gathered) -> ServerSummary {
        ServerSummary {
            url: "turn:h".parse().unwrap(),
            srflx,
            relay,
            released: None,
        }
    }

    #[test]
    fn verdict_table() {
        let ok = Gathered::Ok(Obtained { elapsed_ms: 1.0 });
        let nc = Gathered::not_checked("stun: URL");
        let bad = Gathered::Failed(FailedAt {
            phase: Phase::TurnAuth,
            cause: "x".into(),
        });
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
    fn fixes_name_each_cause_once_with_every_url() {
        let err = |url: &str, cause: &str| GatherError {
            url: url.into(),
            candidate: CandidateType::Relay,
            address: None,
            failure: Failure::new(Phase::TurnAuth, None, cause),
            elapsed_ms: 1.0,
        };
        let errors = [
            err("turn:a", "wrong credentials"),
            err("turn:b", "wrong credentials"),
            err("turn:a", "wrong credentials"),
            err("turn:c", "silent"),
        ];
        let unexplained = server(
            Gathered::Failed(FailedAt {
                phase: Phase::Timeout,
                cause: "no answer".into(),
            }),
            Gathered::not_checked("stun: URLs give no relay"),
        );
        let fix = fix_list(&errors, &[unexplained]);
        let got: Vec<(&str, Vec<&str>)> = fix
            .iter()
            .map(|f| {
                (
                    f.cause.as_str(),
                    f.urls.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("wrong credentials", vec!["turn:a", "turn:b"]),
                ("silent", vec!["turn:c"]),
                ("no answer", vec!["turn:h"]),
            ]
        );
    }
}
