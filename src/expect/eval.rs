//! Pure evaluation of [`Assertion`]s on finished reports. One function per report type; each
//! returns one [`AssertionResult`] per assertion, in order. An assertion about something the
//! report did not measure does not hold, and its `observed` starts with [`NOT_MEASURED`].

use std::fmt;
use std::time::Duration;

use crate::candidate::CandidateType;
use crate::ice_url::Protocol;
use crate::model::check::{
    stage_applies, stages, CheckBody, CheckRow, RowVerdict, StageName, StageView,
};
use crate::model::gather::{GatherBody, ServerSummary};
use crate::model::nat::{Determination, NatBody, NatVerdict};
use crate::model::Outcome;

use super::parse::{Assertion, Compare, RttStage, StageKey};
use super::{AssertionResult, Evaluate, NOT_MEASURED};

/// Whether it held, and what was seen.
struct Held {
    passed: bool,
    observed: String,
}

fn held(passed: bool, observed: impl Into<String>) -> Held {
    Held {
        passed,
        observed: observed.into(),
    }
}

fn not_measured(why: impl fmt::Display) -> Held {
    held(false, format!("{NOT_MEASURED}: {why}"))
}

fn results(assertions: &[Assertion], f: impl Fn(&Assertion) -> Held) -> Vec<AssertionResult> {
    assertions
        .iter()
        .map(|a| {
            let o = f(a);
            AssertionResult {
                expression: a.to_string(),
                passed: o.passed,
                observed: o.observed,
            }
        })
        .collect()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Compare a count, describing it.
fn count_outcome(count: &Compare<u64>, n: usize, what: &str) -> Held {
    held(count.holds(&(n as u64)), format!("{n} {what}"))
}

// ---------------------------------------------------------------------------------------------
// gather

impl Evaluate for GatherBody {
    fn evaluate(&self, assertions: &[Assertion]) -> Vec<AssertionResult> {
        results(assertions, |a| gather_one(a, self))
    }
}

fn server_protocol(s: &ServerSummary) -> Option<Protocol> {
    Some(s.url.protocol())
}

fn gather_one(a: &Assertion, r: &GatherBody) -> Held {
    match a {
        Assertion::Candidates { kind, via, count } => {
            // Was this kind of candidate sought at all?
            let sought = |s: &ServerSummary, e: &crate::model::gather::Gathered| {
                !matches!(e, Outcome::NotChecked { .. })
                    && via.is_none_or(|t| server_protocol(s) == Some(t))
            };
            let measured = match kind {
                CandidateType::Host => !r.run.relay_only,
                CandidateType::Srflx => r.servers.iter().any(|s| sought(s, &s.srflx)),
                CandidateType::Relay => r.servers.iter().any(|s| sought(s, &s.relay)),
                CandidateType::Prflx => false,
            };
            if !measured {
                return not_measured(match (kind, via) {
                    (CandidateType::Host, _) => "--relay-only gathers relay candidates only".into(),
                    (CandidateType::Relay, Some(t)) => format!("no TURN server reached over {t}"),
                    (CandidateType::Relay, None) => "no TURN server was asked for a relay".into(),
                    _ => format!("no server was asked for {kind} candidates"),
                });
            }
            let n = r
                .candidates
                .iter()
                .filter(|c| c.kind == *kind && via.is_none_or(|t| c.relay_protocol == Some(t)))
                .count();
            let what = match via {
                Some(t) => format!("{kind} candidate(s) via {t}"),
                None => format!("{kind} candidate(s)"),
            };
            count_outcome(count, n, &what)
        }
        Assertion::TransportOk(t) => {
            let servers: Vec<&ServerSummary> = r
                .servers
                .iter()
                .filter(|s| server_protocol(s) == Some(*t))
                .collect();
            if servers.is_empty() {
                return not_measured(format!("no server reached over {t}"));
            }
            let failed: Vec<String> = servers
                .iter()
                .filter_map(|s| {
                    [&s.srflx, &s.relay].into_iter().find_map(|e| match e {
                        Outcome::Failed(f) => Some(format!("{} ({}: {})", s.url, f.phase, f.cause)),
                        _ => None,
                    })
                })
                .collect();
            let answered = servers
                .iter()
                .filter(|s| matches!(s.srflx, Outcome::Ok(_)) || matches!(s.relay, Outcome::Ok(_)))
                .count();
            if !failed.is_empty() {
                held(
                    false,
                    format!(
                        "{} of {} over {t} failed: {}",
                        failed.len(),
                        plural(servers.len(), "server", "servers"),
                        failed.join("; ")
                    ),
                )
            } else if answered == 0 {
                not_measured(format!("nothing was asked of the servers over {t}"))
            } else {
                held(
                    true,
                    format!(
                        "{} over {t} gave what they should",
                        plural(servers.len(), "server", "servers")
                    ),
                )
            }
        }
        _ => not_measured("gather cannot answer this"),
    }
}

// ---------------------------------------------------------------------------------------------
// check

impl Evaluate for CheckBody {
    fn evaluate(&self, assertions: &[Assertion]) -> Vec<AssertionResult> {
        results(assertions, |a| check_one(a, self))
    }
}

/// How a row is named in `observed`: `turn:h?transport=udp 198.18.0.1:3478`.
pub fn row_name(row: &CheckRow) -> String {
    let address = row.address.map(|a| a.to_string()).unwrap_or_default();
    format!("{} {address}", row.probed_url)
}

/// The stages (see [`stages`]) a key covers.
fn stage_names(s: StageKey) -> &'static [StageName] {
    match s {
        StageKey::Dns => &[StageName::Dns],
        StageKey::Connect => &[StageName::Connect],
        StageKey::Binding => &[StageName::Stun],
        StageKey::Challenge => &[StageName::Challenge],
        StageKey::Allocate => &[StageName::Allocate],
        StageKey::Permission => &[StageName::Permission],
        StageKey::Channel => &[StageName::Channel],
        StageKey::Echo => &[StageName::SendEcho, StageName::ChannelEcho],
        StageKey::Release => &[StageName::Release],
    }
}

fn failure_text(v: &StageView<'_>) -> String {
    let name = v.name.column();
    match &v.status {
        Outcome::Failed(f) => match f.failure.code {
            Some(c) => format!("{name} failed ({c}: {})", f.failure.cause),
            None => format!("{name} failed ({})", f.failure.cause),
        },
        Outcome::NotChecked { reason } => format!("{name} not checked ({reason})"),
        Outcome::Ok(ms) => format!("{name} ok in {ms:.1} ms"),
    }
}

/// A row's result for a stage key.
enum RowStage {
    Ok,
    Failed(String),
    NotChecked(String),
}

/// A row's result for a stage key; `None` when the stage does not apply to the row.
fn row_stage(row: &CheckRow, key: StageKey) -> Option<RowStage> {
    let names = stage_names(key);
    if !names.iter().any(|n| stage_applies(row, *n)) {
        return None;
    }
    let views: Vec<StageView<'_>> = stages(row)
        .into_iter()
        .filter(|v| names.contains(&v.name))
        .collect();
    if let Some(f) = views.iter().find(|v| v.status.is_failed()) {
        return Some(RowStage::Failed(failure_text(f)));
    }
    // Echo: either method getting data through is enough (they test the same relay).
    if views.iter().any(|v| v.status.is_ok()) {
        return Some(RowStage::Ok);
    }
    Some(RowStage::NotChecked(
        views.first().map(failure_text).unwrap_or_default(),
    ))
}

fn check_one(a: &Assertion, r: &CheckBody) -> Held {
    match a {
        Assertion::Candidates { kind, via, count } => {
            let (rows, what): (Vec<&CheckRow>, String) = match kind {
                CandidateType::Srflx => (
                    r.rows
                        .iter()
                        .filter(|row| !matches!(row.binding, Outcome::NotChecked { .. }))
                        .collect(),
                    "row(s) got a mapped address (srflx) from Binding".into(),
                ),
                CandidateType::Relay => (
                    r.rows
                        .iter()
                        .filter(|row| row.turn && via.is_none_or(|t| row.transport == t))
                        .filter(|row| !matches!(row.allocate, Outcome::NotChecked { .. }))
                        .collect(),
                    match via {
                        Some(t) => format!("row(s) allocated a relay over {t}"),
                        None => "row(s) allocated a relay".into(),
                    },
                ),
                _ => return not_measured(format!("check does not gather {kind} candidates")),
            };
            if rows.is_empty() {
                return not_measured(match (kind, via) {
                    (CandidateType::Srflx, _) => "no Binding was sent".to_string(),
                    (_, Some(t)) => format!("no TURN row over {t} got to Allocate"),
                    _ => "no TURN row got to Allocate".into(),
                });
            }
            let n = rows
                .iter()
                .filter(|row| match kind {
                    CandidateType::Srflx => row.binding.is_ok(),
                    _ => row.allocate.is_ok(),
                })
                .count();
            count_outcome(count, n, &what)
        }
        Assertion::TransportOk(t) => {
            let rows: Vec<&CheckRow> = r.rows.iter().filter(|row| row.transport == *t).collect();
            if rows.is_empty() {
                return not_measured(format!("no {t} row"));
            }
            let failed: Vec<String> = rows
                .iter()
                .filter(|row| row.verdict == RowVerdict::Fail)
                .map(|row| {
                    let why: Vec<String> = stages(row)
                        .iter()
                        .filter(|v| v.status.is_failed())
                        .map(failure_text)
                        .collect();
                    format!("{}: {}", row_name(row), why.join(", "))
                })
                .collect();
            if failed.is_empty() {
                held(
                    true,
                    format!(
                        "{} passed",
                        plural(rows.len(), &format!("{t} row"), &format!("{t} rows"))
                    ),
                )
            } else {
                held(
                    false,
                    format!(
                        "{} of {} failed: {}",
                        failed.len(),
                        plural(rows.len(), &format!("{t} row"), &format!("{t} rows")),
                        failed.join("; ")
                    ),
                )
            }
        }
        Assertion::StageOk(key) => {
            let per_row: Vec<(&CheckRow, RowStage)> = r
                .rows
                .iter()
                .filter_map(|row| row_stage(row, *key).map(|s| (row, s)))
                .collect();
            let ok = per_row
                .iter()
                .filter(|(_, s)| matches!(s, RowStage::Ok))
                .count();
            let failed = per_row
                .iter()
                .filter(|(_, s)| matches!(s, RowStage::Failed(_)))
                .count();
            let bad: Vec<String> = per_row
                .iter()
                .filter_map(|(row, s)| match s {
                    RowStage::Ok => None,
                    RowStage::Failed(e) | RowStage::NotChecked(e) => {
                        Some(format!("{}: {e}", row_name(row)))
                    }
                })
                .collect();
            if per_row.is_empty() {
                not_measured(format!("{} applies to no row", key.as_str()))
            } else if ok == 0 && failed == 0 {
                not_measured(bad.join("; "))
            } else if bad.is_empty() {
                held(true, format!("ok on {}", plural(ok, "row", "rows")))
            } else {
                held(
                    false,
                    format!(
                        "{} of {}: {}",
                        bad.len(),
                        plural(per_row.len(), "row", "rows"),
                        bad.join("; ")
                    ),
                )
            }
        }
        Assertion::CertValidDays(cmp) => {
            let leaves: Vec<(i64, &CheckRow)> = r
                .rows
                .iter()
                .filter_map(|row| {
                    let leaf = row.tls.info()?.chain.first()?;
                    Some((leaf.days_left, row))
                })
                .collect();
            match leaves.iter().min_by_key(|(d, _)| *d) {
                None => not_measured("no TLS handshake completed"),
                Some((days, row)) => held(
                    cmp.holds(days),
                    format!(
                        "{days} days left ({}; least of {})",
                        row_name(row),
                        plural(leaves.len(), "certificate", "certificates")
                    ),
                ),
            }
        }
        Assertion::Rtt { stage, limit } => {
            let mut times: Vec<(f64, &str, &CheckRow)> = Vec::new();
            for row in &r.rows {
                if *stage != RttStage::Allocate {
                    if let Outcome::Ok(p) = &row.binding {
                        times.push((p.ms, "binding", row));
                    }
                }
                if *stage != RttStage::Binding {
                    if let Outcome::Ok(p) = &row.allocate {
                        times.push((p.ms, "allocate", row));
                    }
                }
            }
            let worst = times.iter().copied().max_by(|a, b| a.0.total_cmp(&b.0));
            match worst {
                None => not_measured(match stage {
                    RttStage::Binding => "no Binding succeeded",
                    RttStage::Allocate => "no Allocate succeeded",
                    RttStage::Any => "no Binding or Allocate succeeded",
                }),
                Some((ms, what, row)) => held(
                    limit.holds(&Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
                    format!(
                        "worst {ms:.1} ms ({what}, {}) of {}",
                        row_name(row),
                        plural(times.len(), "round trip", "round trips")
                    ),
                ),
            }
        }
        _ => not_measured("check cannot answer this"),
    }
}

// ---------------------------------------------------------------------------------------------
// nat

impl Evaluate for NatBody {
    fn evaluate(&self, assertions: &[Assertion]) -> Vec<AssertionResult> {
        results(assertions, |a| nat_one(a, self))
    }
}

/// Every family whose value is known must satisfy `cmp`, and one at least must be known.
fn families<T: PartialEq>(
    r: &NatBody,
    get: impl Fn(&NatVerdict) -> &Determination<T>,
    cmp: &Compare<T>,
    show: impl Fn(&T) -> String,
) -> Held {
    let mut known = 0;
    let mut ok = true;
    let mut parts = Vec::new();
    for f in &r.families {
        let d = get(&f.verdict);
        match d {
            Determination::Known { value, .. } => {
                known += 1;
                ok &= cmp.op.holds_eq(value, &cmp.value);
                parts.push(format!("{} {}", f.verdict.family, show(value)));
            }
            Determination::Inconclusive { reason } => {
                parts.push(format!("{} inconclusive ({reason})", f.verdict.family))
            }
            Determination::NotChecked { reason } => {
                parts.push(format!("{} {NOT_MEASURED} ({reason})", f.verdict.family))
            }
        }
    }
    if r.families.is_empty() {
        return not_measured("no address family was probed");
    }
    if known == 0 {
        return not_measured(parts.join("; "));
    }
    held(ok, parts.join("; "))
}

fn wire<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

fn nat_one(a: &Assertion, r: &NatBody) -> Held {
    match a {
        Assertion::NatMapping(c) => families(r, |v| &v.mapping, c, wire),
        Assertion::NatFiltering(c) => families(r, |v| &v.filtering, c, wire),
        Assertion::NatType(c) => families(r, |v| &v.classic_name, c, wire),
        Assertion::NatHairpin(c) => families(
            r,
            |v| &v.hairpin,
            c,
            |h| {
                if *h {
                    "hairpin yes".into()
                } else {
                    "hairpin no".into()
                }
            },
        ),
        _ => not_measured("nat cannot answer this"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::parse::{parse, Scope};
    use crate::model::check::{CheckReport, Stage};
    use crate::model::gather::GatherReport;
    use crate::model::nat::{ClassicName, MappingBehavior, NatReport};
    use crate::model::Report;

    fn golden<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let path = format!("{}/fixtures/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn eval_table<B: Evaluate>(report: &Report<B>, scope: Scope, cases: &[(&str, bool, &str)]) {
        for (expr, passed, observed) in cases {
            let a = parse(expr, scope).unwrap_or_else(|e| panic!("{e}"));
            let got = report.body.evaluate(std::slice::from_ref(&a)).remove(0);
            assert_eq!(got.passed, *passed, "{expr}: {}", got.observed);
            assert!(
                got.observed.contains(observed),
                "{expr}:\n got  {}\n want …{observed}…",
                got.observed
            );
        }
    }

    /// The golden gather report: a STUN server, TURN over udp, tcp and tls (all relayed), and a
    /// TURN server over tcp that rejected the credentials.
    #[test]
    fn gather_table() {
        let r: GatherReport = golden("gather.json");
        eval_table(
            &r,
            Scope::Gather,
            &[
                ("relay", true, "3 relay candidate(s)"),
                ("relay>=4", false, "3 relay candidate(s)"),
                ("relay:tls", true, "1 relay candidate(s) via tls"),
                ("relay:udp=1", true, "1 relay candidate(s) via udp"),
                ("srflx", true, "1 srflx candidate(s)"),
                ("host", true, "1 host candidate(s)"),
                ("host=0", false, "1 host candidate(s)"),
                ("udp:ok", true, "2 servers over udp gave what they should"),
                ("tcp:ok", false, "1 of 2 servers over tcp failed: turn:198.18.0.2?transport=tcp (turn-auth: wrong TURN credentials"),
                ("tls:ok", true, "1 server over tls"),
            ],
        );
        // Not measured: relay-only skips host candidates; no TURN server at all.
        let mut relay_only = r.clone();
        relay_only.run.relay_only = true;
        eval_table(
            &relay_only,
            Scope::Gather,
            &[("host=0", false, "not measured: --relay-only")],
        );
        let mut stun_only = r.clone();
        stun_only.servers.retain(|s| !s.url.is_turn());
        eval_table(
            &stun_only,
            Scope::Gather,
            &[
                (
                    "relay=0",
                    false,
                    "not measured: no TURN server was asked for a relay",
                ),
                (
                    "relay:tls",
                    false,
                    "not measured: no TURN server reached over tls",
                ),
                ("tls:ok", false, "not measured: no server reached over tls"),
            ],
        );
    }

    /// The golden check report: udp passes, tcp fails at Allocate (401), tls passes with a
    /// certificate expiring in 5 days, a second server over udp passes.
    #[test]
    fn check_table() {
        let r: CheckReport = golden("check.json");
        eval_table(
            &r,
            Scope::Check,
            &[
                ("udp:ok", true, "2 udp rows passed"),
                ("tls:ok", true, "1 tls row passed"),
                ("tcp:ok", false, "1 of 1 tcp row failed: turn:turn.example.org?transport=tcp 198.18.0.1:3478: allocate failed (401: wrong TURN credentials"),
                ("relay", true, "3 row(s) allocated a relay"),
                ("relay>=4", false, "3 row(s)"),
                ("relay:tls", true, "1 row(s) allocated a relay over tls"),
                ("relay:tcp", false, "0 row(s) allocated a relay over tcp"),
                ("srflx=4", true, "4 row(s) got a mapped address"),
                ("binding:ok", true, "ok on 4 rows"),
                ("dns:ok", true, "ok on 4 rows"),
                ("connect:ok", true, "ok on 2 rows"),
                ("allocate:ok", false, "1 of 4 rows: turn:turn.example.org?transport=tcp 198.18.0.1:3478: allocate failed (401"),
                ("permission:ok", false, "1 of 4 rows: turn:turn.example.org?transport=tcp 198.18.0.1:3478: perm not checked (the allocation failed)"),
                // The TLS row echoed by Send indication only; that is enough.
                ("echo:ok", false, "1 of 4 rows"),
                ("tls:cert-valid-days>=14", false, "5 days left (turns:turn.example.org"),
                ("tls:cert-valid-days>=5", true, "5 days left"),
                ("rtt<150ms", true, "worst 36.0 ms (allocate, turn:turn-eu.example.org"),
                ("rtt<36ms", false, "worst 36.0 ms"),
                ("rtt:binding<=35.2ms", true, "worst 35.2 ms (binding"),
                ("rtt:allocate>1s", false, "of 3 round trips"),
            ],
        );
        let mut udp_only = r.clone();
        udp_only.rows.retain(|row| row.transport == Protocol::Udp);
        eval_table(
            &udp_only,
            Scope::Check,
            &[
                ("tls:ok", false, "not measured: no tls row"),
                (
                    "tls:cert-valid-days>=14",
                    false,
                    "not measured: no TLS handshake completed",
                ),
                (
                    "connect:ok",
                    false,
                    "not measured: connect applies to no row",
                ),
                (
                    "relay:tls=0",
                    false,
                    "not measured: no TURN row over tls got to Allocate",
                ),
                ("echo:ok", true, "ok on 2 rows"),
            ],
        );
        let mut nothing = r.clone();
        for row in &mut nothing.rows {
            row.binding = Stage::not_checked(crate::model::Reason::NotReached);
            row.allocate = Stage::not_checked(crate::model::Reason::NotReached);
        }
        eval_table(
            &nothing,
            Scope::Check,
            &[
                (
                    "rtt<1s",
                    false,
                    "not measured: no Binding or Allocate succeeded",
                ),
                (
                    "allocate:ok",
                    false,
                    "not measured: turn:turn.example.org?transport=udp",
                ),
                ("srflx", false, "not measured: no Binding was sent"),
            ],
        );
    }

    #[test]
    fn nat_table() {
        let r: NatReport = golden("nat.json");
        eval_table(
            &r,
            Scope::Nat,
            &[
                (
                    "nat:mapping=endpoint-independent",
                    true,
                    "ipv4 endpoint-independent",
                ),
                (
                    "nat:mapping!=endpoint-independent",
                    false,
                    "ipv4 endpoint-independent",
                ),
                (
                    "nat:filtering=address-and-port-dependent",
                    true,
                    "ipv4 address-and-port-dependent",
                ),
                (
                    "nat:filtering=endpoint-independent",
                    false,
                    "ipv4 address-and-port-dependent",
                ),
                (
                    "nat:type=port-restricted-cone",
                    true,
                    "ipv4 port-restricted-cone",
                ),
                ("nat:type=symmetric", false, "ipv4 port-restricted-cone"),
                ("nat:hairpin=yes", true, "ipv4 hairpin yes"),
            ],
        );
        // A second family that could not be determined does not hide the first; with no known
        // family at all, the assertion fails as not measured.
        let mut two = r.clone();
        let mut v6 = two.families[0].clone();
        v6.verdict.family = "ipv6".into();
        v6.verdict.mapping = Determination::inconclusive("the server lied");
        v6.verdict.classic_name = Determination::not_checked("no IPv6 address");
        two.families.push(v6);
        eval_table(
            &two,
            Scope::Nat,
            &[
                (
                    "nat:mapping=endpoint-independent",
                    true,
                    "ipv4 endpoint-independent; ipv6 inconclusive (the server lied)",
                ),
                (
                    "nat:type=port-restricted-cone",
                    true,
                    "ipv6 not measured (no IPv6 address)",
                ),
            ],
        );
        two.families.remove(0);
        eval_table(
            &two,
            Scope::Nat,
            &[(
                "nat:mapping=endpoint-independent",
                false,
                "not measured: ipv6 inconclusive",
            )],
        );
        two.families.clear();
        eval_table(
            &two,
            Scope::Nat,
            &[("nat:hairpin=no", false, "not measured: no address family")],
        );
        // Types used above stay in step with the parser's words.
        let _ = (ClassicName::Symmetric, MappingBehavior::EndpointIndependent);
    }
}
