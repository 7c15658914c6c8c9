//! `--expect`: assertions on a finished report, for CI gates and monitoring.
//!
//! An expression is parsed once into a typed [`Assertion`] ([`parse`]) and then evaluated,
//! purely, on a report ([`eval::gather`], [`eval::check`], [`eval::nat`]), giving one
//! [`AssertionResult`] `{expression, passed, observed}` per assertion. [`amend_verdict`] folds
//! the results into the run's [`Verdict`]. Nothing here does I/O, so the same code serves the
//! CLI, the JUnit writer and a metrics exporter.
//!
//! # Grammar
//!
//! ```text
//! expr       = key [ ":" qualifier ] [ op value ]
//! op         = "=" | "!=" | "<" | "<=" | ">" | ">="
//! value      = duration (humantime: 150ms, 2s, 1m) | integer | word
//! ```
//!
//! Keys, qualifiers and words are case-insensitive; spaces around the operator are allowed.
//! The keys ([`KEYS`] lists each with where it applies):
//!
//! | expression | meaning | gather | check | nat |
//! |---|---|---|---|---|
//! | `host`, `srflx` | at least one such candidate (`srflx` on check: a row's Binding gave a mapped address) | yes | srflx | |
//! | `relay`, `relay:udp\|tcp\|tls` | at least one relay (reached over that transport) | yes | yes (allocations) | |
//! | `relay>=2`, `host=0`, ... | the same, counted | yes | yes | |
//! | `udp:ok`, `tcp:ok`, `tls:ok` | every server/row over that transport passed, and there was one | yes | yes | |
//! | `dns:ok`, `connect:ok`, `binding:ok`, `challenge:ok`, `allocate:ok`, `permission:ok`, `channel:ok`, `echo:ok`, `release:ok` | that stage passed on every row it applies to, and on one at least | | yes | |
//! | `tls:cert-valid-days>=14` | the least `days_left` of the leaf certificates seen | | yes | |
//! | `rtt<150ms`, `rtt:binding<..`, `rtt:allocate<..` | the worst Binding and/or authenticated Allocate time over all rows | | yes | |
//! | `nat:mapping=endpoint-independent` | RFC 4787 mapping (`=`/`!=`) | | | yes |
//! | `nat:filtering=address-dependent` | RFC 4787 filtering (`=`/`!=`) | | | yes |
//! | `nat:type=symmetric` | the classic name (`full-cone`, `port-restricted-cone`, ...) | | | yes |
//! | `nat:hairpin=yes` | hairpinning (`yes`/`no`) | | | yes |
//!
//! `prflx` is refused: peer-reflexive candidates come from a peer's connectivity checks, which
//! no subcommand runs yet. `rtt` is a `check` key only: `gather` records when a candidate arrived since the start of
//! the run (DNS, TCP, TLS and the 401 round trip included), which is not a round-trip time.
//!
//! # Unknown is not false
//!
//! An assertion about something that was not measured (no TLS row, no RFC 5780 server, a NAT
//! determination that is inconclusive) does **not** hold: it fails with an `observed` text that
//! starts with `not measured`. For `nat:*`, every address family whose value is known must
//! satisfy the comparison and at least one must be known (pass `-4` to insist on IPv4).

pub mod eval;
pub mod parse;

pub use crate::model::expect::{AssertionResult, NOT_MEASURED};
use crate::model::{Report, Verdict};

pub use parse::{
    parse, valid_keys, Assertion, Cmp, Compare, ExpectError, KeyInfo, RttStage, Scope, StageKey,
    KEYS,
};

/// A report body that `--expect` assertions can be evaluated on (pure; the report is not
/// changed).
pub trait Evaluate {
    /// One result per assertion, in order.
    fn evaluate(&self, assertions: &[Assertion]) -> Vec<AssertionResult>;
}

/// Evaluate `assertions` on the report, store the results in it and fold them into its verdict
/// ([`amend_verdict`]). Returns the exit code. With no assertions the report is unchanged.
pub fn apply_expectations<B: Evaluate>(report: &mut Report<B>, assertions: &[Assertion]) -> i32 {
    if !assertions.is_empty() {
        let results = report.body.evaluate(assertions);
        report.verdict = amend_verdict(&report.verdict, &results);
        report.expectations = results;
    }
    report.verdict.exit_code
}

/// Fold assertion results into the run's verdict: the run fails when it failed on its own or
/// when any assertion does not hold (exit code the larger of the two, at least 1). With no
/// results the verdict is returned unchanged.
pub fn amend_verdict(v: &Verdict, results: &[AssertionResult]) -> Verdict {
    if results.is_empty() {
        return v.clone();
    }
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.expression.as_str())
        .collect();
    if failed.is_empty() {
        Verdict {
            ok: v.ok,
            exit_code: v.exit_code,
            summary: format!("{}; expectations: all {} held", v.summary, results.len()),
        }
    } else {
        Verdict {
            ok: false,
            exit_code: v.exit_code.max(1),
            summary: format!(
                "{}; expectations FAILED: {} of {} ({})",
                v.summary,
                failed.len(),
                results.len(),
                failed.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(e: &str, passed: bool) -> AssertionResult {
        AssertionResult {
            expression: e.into(),
            passed,
            observed: "x".into(),
        }
    }

    #[test]
    fn amend_verdict_table() {
        let ok = Verdict {
            ok: true,
            exit_code: 0,
            summary: "ok".into(),
        };
        let bad = Verdict {
            ok: false,
            exit_code: 1,
            summary: "FAILED".into(),
        };
        let cases: &[(&Verdict, Vec<AssertionResult>, bool, i32, &str)] = &[
            (&ok, vec![], true, 0, "ok"),
            (
                &ok,
                vec![r("relay", true)],
                true,
                0,
                "ok; expectations: all 1 held",
            ),
            (
                &ok,
                vec![r("relay", true), r("udp:ok", false)],
                false,
                1,
                "ok; expectations FAILED: 1 of 2 (udp:ok)",
            ),
            (
                &bad,
                vec![r("relay", true)],
                false,
                1,
                "FAILED; expectations: all 1 held",
            ),
        ];
        for (v, results, want_ok, code, summary) in cases {
            let got = amend_verdict(v, results);
            assert_eq!(
                (got.ok, got.exit_code, got.summary.as_str()),
                (*want_ok, *code, *summary)
            );
        }
    }
}
