//! What CI and monitoring need from any report: the JUnit document ([`junit`]) and the quiet
//! one-line verdict ([`render_quiet`]). `--expect` results are already in the report
//! (`expect::apply_expectations`); everything here only reads it. All pure; the exporter can
//! reuse them unchanged.

use std::io::{self, Write};

use super::junit::{self, Case, CaseResult, Suite};
use crate::model::check::{stage_applies, stages, CheckBody};
use crate::model::expect::NOT_MEASURED;
use crate::model::gather::GatherBody;
use crate::model::nat::{family_summary, Determination, NatBody};
use crate::model::{Body, Outcome, Report, Verdict};

/// A report body with its own JUnit test cases.
pub trait JunitCases {
    /// The cases (without the `--expect` assertions, which [`junit`] adds).
    fn junit_cases(&self) -> Vec<Case>;
}

/// A passed case (`time_s` known), a failed one or a skipped one.
fn case(classname: String, name: &str, time_s: Option<f64>, result: CaseResult) -> Case {
    Case {
        classname,
        name: name.into(),
        time_s,
        result,
    }
}

fn passed() -> CaseResult {
    CaseResult::Passed {
        detail: String::new(),
    }
}

impl JunitCases for GatherBody {
    /// One case per server × expected candidate (srflx, relay).
    fn junit_cases(&self) -> Vec<Case> {
        let mut cases = Vec::new();
        for s in &self.servers {
            for (name, g) in [("srflx", &s.srflx), ("relay", &s.relay)] {
                let (time_s, result) = match g {
                    Outcome::Ok(o) => (Some(o.elapsed_ms / 1000.0), passed()),
                    Outcome::Failed(f) => (
                        None,
                        CaseResult::Failed {
                            kind: f.phase.to_string(),
                            message: format!("{}: {}", f.phase, f.cause),
                            text: String::new(),
                        },
                    ),
                    Outcome::NotChecked { reason } => (
                        None,
                        CaseResult::Skipped {
                            message: reason.to_string(),
                        },
                    ),
                };
                cases.push(case(format!("gather.{}", s.url), name, time_s, result));
            }
        }
        cases
    }
}

impl JunitCases for CheckBody {
    /// One case per row (server × address × transport) × stage that applies to it.
    fn junit_cases(&self) -> Vec<Case> {
        let mut cases = Vec::new();
        for row in &self.rows {
            let address = row.address.map(|a| a.to_string()).unwrap_or_default();
            let classname = format!("check.{} {address} {}", row.probed_url, row.transport);
            for v in stages(row) {
                if !stage_applies(row, v.name) {
                    continue;
                }
                let (time_s, result) = match &v.status {
                    Outcome::Ok(ms) => (Some(ms / 1000.0), passed()),
                    Outcome::Failed(f) => (
                        f.ms.map(|m| m / 1000.0),
                        CaseResult::Failed {
                            kind: f.failure.phase.to_string(),
                            message: message(&f.failure),
                            text: String::new(),
                        },
                    ),
                    Outcome::NotChecked { reason } => (
                        None,
                        CaseResult::Skipped {
                            message: reason.to_string(),
                        },
                    ),
                };
                cases.push(case(classname.clone(), v.name.column(), time_s, result));
            }
        }
        cases
    }
}

/// `401 Unauthorized: wrong TURN credentials...`: a failed stage's code, reason and cause.
fn message(f: &crate::model::Failure) -> String {
    let mut message = String::new();
    if let Some(c) = f.code {
        message.push_str(&format!("{c} "));
    }
    if let Some(r) = &f.reason {
        message.push_str(&format!("{r}: "));
    }
    message.push_str(&f.cause);
    message
}

/// A determination as a JUnit case: known passes (evidence in `system-out`); inconclusive and
/// not checked are skipped, never failed (unknown is not false). Failure belongs to the
/// family's `verdict` case, which follows the exit code.
fn determination_case<T: serde::Serialize>(
    classname: &str,
    name: &str,
    d: &Determination<T>,
) -> Case {
    let result = match d {
        Determination::Known { value, evidence } => {
            let v = serde_json::to_value(value)
                .map(|v| match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
                .unwrap_or_default();
            CaseResult::Passed {
                detail: format!("{v}: {evidence}"),
            }
        }
        Determination::Inconclusive { reason } => CaseResult::Skipped {
            message: format!("inconclusive: {reason}"),
        },
        Determination::NotChecked { reason } => CaseResult::Skipped {
            message: format!("not checked: {reason}"),
        },
    };
    Case {
        classname: classname.into(),
        name: name.into(),
        time_s: None,
        result,
    }
}

impl JunitCases for NatBody {
    /// Per family: a `verdict` case (fails when discovery could not determine anything), then
    /// one case per determination.
    fn junit_cases(&self) -> Vec<Case> {
        let mut cases = Vec::new();
        for f in &self.families {
            let v = &f.verdict;
            let cn = format!("nat.{}", v.family);
            let summary = family_summary(v);
            cases.push(Case {
                classname: cn.clone(),
                name: "verdict".into(),
                time_s: None,
                result: if v.exit_code() == 0 {
                    CaseResult::Passed { detail: summary }
                } else {
                    CaseResult::Failed {
                        kind: "undetermined".into(),
                        message: format!("could not determine: {summary}"),
                        text: v.forecast.clone(),
                    }
                },
            });
            cases.extend([
                determination_case(&cn, "mapping", &v.mapping),
                determination_case(&cn, "filtering", &v.filtering),
                determination_case(&cn, "rfc5780-mapping", &v.rfc5780_mapping),
                determination_case(&cn, "multi-server", &v.multi_server),
                determination_case(&cn, "port-allocation", &v.port_allocation),
                determination_case(&cn, "hairpin", &v.hairpin),
                determination_case(&cn, "nat-present", &v.nat_present),
                determination_case(&cn, "cgnat-or-double-nat", &v.cgnat_or_double_nat),
                determination_case(&cn, "alg-suspected", &v.alg_suspected),
                determination_case(&cn, "udp-blocked", &v.udp_blocked),
                determination_case(&cn, "tcp-fallback", &v.tcp_fallback),
                determination_case(&cn, "lifetime", &v.lifetime),
                determination_case(&cn, "type", &v.classic_name),
            ]);
        }
        cases
    }
}

/// The JUnit document: the report's own cases in one suite (`iceprobe <command>`) and the
/// assertions in another (`iceprobe <command> --expect`), one case each.
pub fn junit<B: Body + JunitCases>(report: &Report<B>) -> String {
    let command = &report.command;
    let mut suites = vec![Suite {
        name: format!("iceprobe {command}"),
        cases: report.body.junit_cases(),
    }];
    if !report.expectations.is_empty() {
        suites.push(Suite {
            name: format!("iceprobe {command} --expect"),
            cases: report
                .expectations
                .iter()
                .map(|r| Case {
                    classname: format!("{command}.expect"),
                    name: r.expression.clone(),
                    time_s: None,
                    result: if r.passed {
                        CaseResult::Passed {
                            detail: r.observed.clone(),
                        }
                    } else {
                        CaseResult::Failed {
                            kind: if r.observed.starts_with(NOT_MEASURED) {
                                "not-measured".into()
                            } else {
                                "expectation".into()
                            },
                            message: format!(
                                "{} does not hold: observed {}",
                                r.expression, r.observed
                            ),
                            text: String::new(),
                        }
                    },
                })
                .collect(),
        });
    }
    junit::render(
        &format!("iceprobe {command}"),
        report.duration_ms() / 1000.0,
        &suites,
    )
}

/// `--quiet`: the one-line verdict ([`summary_line`]), then one line per assertion that does
/// not hold.
pub fn render_quiet<B: Body>(report: &Report<B>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{}",
        summary_line(&report.command, &report.verdict, report.duration_ms())
    )?;
    for r in report.expectations.iter().filter(|r| !r.passed) {
        writeln!(out, "  FAIL {}: observed {}", r.expression, r.observed)?;
    }
    Ok(())
}

/// One line for logs: `iceprobe check: PASS ok: ...; expectations: all 2 held (1.2 s, exit 0)`.
pub fn summary_line(command: &str, v: &Verdict, duration_ms: f64) -> String {
    format!(
        "iceprobe {command}: {} {} ({:.1} s, exit {})",
        if v.ok { "PASS" } else { "FAIL" },
        v.summary,
        duration_ms / 1000.0,
        v.exit_code
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::{apply_expectations, parse, Assertion, Evaluate, Scope};
    use crate::model::check::CheckReport;
    use crate::model::gather::GatherReport;
    use crate::model::nat::NatReport;
    use crate::render::junit::tests::parse as parse_xml;
    use crate::render::tests::golden;

    fn load<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let path = format!("{}/fixtures/golden/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn assertions(scope: Scope, exprs: &[&str]) -> Vec<Assertion> {
        exprs.iter().map(|e| parse(e, scope).unwrap()).collect()
    }

    #[test]
    fn check_junit_counts_and_failures() {
        let mut r: CheckReport = load("check.json");
        let code = apply_expectations(
            &mut r,
            &assertions(Scope::Check, &["udp:ok", "tls:cert-valid-days>=14"]),
        );
        assert_eq!(code, 1);
        let xml = junit(&r);
        golden("check.junit.xml", &xml);
        let p = parse_xml(&xml);
        // Stage cases: udp 9 (no connect, tls), tcp 10 (no tls), tls 11, eu udp 9 = 39; +2.
        assert_eq!(p.cases.len(), 41);
        assert_eq!(p.root.0, 41);
        let failures: Vec<_> = p.cases.iter().filter(|c| c.2 == "failure").collect();
        assert_eq!(p.root.1, failures.len());
        assert_eq!(failures.len(), 2, "{failures:#?}");
        assert_eq!(failures[0].1, "allocate");
        assert!(failures[0].0.contains("transport=tcp"));
        assert!(failures[0].3.contains("401"), "{}", failures[0].3);
        assert_eq!(failures[1].1, "tls:cert-valid-days>=14");
        assert!(
            failures[1].3.contains("observed 5 days left"),
            "{}",
            failures[1].3
        );
        let udp = p.cases.iter().find(|c| c.1 == "udp:ok").unwrap();
        assert_eq!(udp.2, "passed");
    }

    #[test]
    fn gather_and_nat_junit() {
        let mut g: GatherReport = load("gather.json");
        apply_expectations(&mut g, &assertions(Scope::Gather, &["relay:tls"]));
        let p = parse_xml(&junit(&g));
        assert_eq!(p.cases.len(), 5 * 2 + 1);
        assert_eq!(p.root, (11, 1, 4));
        let failed = p.cases.iter().find(|c| c.2 == "failure").unwrap();
        assert_eq!(
            (failed.0.as_str(), failed.1.as_str()),
            ("gather.turn:198.18.0.2?transport=tcp", "relay")
        );
        assert!(failed.3.starts_with("turn-auth: wrong TURN credentials"));

        let mut n: NatReport = load("nat.json");
        let code = apply_expectations(&mut n, &assertions(Scope::Nat, &["nat:type=symmetric"]));
        assert_eq!(code, 1);
        assert!(!n.verdict.ok);
        let xml = junit(&n);
        golden("nat.junit.xml", &xml);
        let p = parse_xml(&xml);
        assert_eq!(p.cases.len(), 14 + 1);
        assert_eq!(p.root.1, 1);
        let f = p.cases.iter().find(|c| c.2 == "failure").unwrap();
        assert_eq!(f.1, "nat:type=symmetric");
        assert!(
            f.3.contains("observed ipv4 port-restricted-cone"),
            "{}",
            f.3
        );
    }

    /// Reports with `expectations` still match their schema, and the field stays absent
    /// without `--expect` (schema_version 1 readers see no change).
    #[test]
    fn expectations_match_the_schemas() {
        use crate::render::tests::validate;
        fn check_schema<B: Body + Evaluate + serde::Serialize>(
            mut r: Report<B>,
            schema: &str,
            scope: Scope,
            exprs: &[&str],
        ) {
            let path = format!("{}/docs/schema/{schema}", env!("CARGO_MANIFEST_DIR"));
            let root: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let before = serde_json::to_value(&r).unwrap();
            assert!(before.get("expectations").is_none(), "{schema}");
            apply_expectations(&mut r, &assertions(scope, exprs));
            let v = serde_json::to_value(&r).unwrap();
            assert_eq!(v["expectations"].as_array().unwrap().len(), exprs.len());
            validate(&root, &root, &v, "").unwrap_or_else(|e| panic!("{schema}: {e}"));
            let mut bad = v.clone();
            bad["expectations"][0]["extra"] = 1.into();
            assert!(validate(&root, &root, &bad, "").is_err(), "{schema}");
        }
        check_schema(
            load::<GatherReport>("gather.json"),
            "gather-v1.schema.json",
            Scope::Gather,
            &["relay", "tls:ok"],
        );
        check_schema(
            load::<CheckReport>("check.json"),
            "check-v1.schema.json",
            Scope::Check,
            &["udp:ok", "rtt<1s"],
        );
        check_schema(
            load::<NatReport>("nat.json"),
            "nat-v1.schema.json",
            Scope::Nat,
            &["nat:hairpin=yes"],
        );
    }

    /// The table format lists each assertion before the verdict line.
    #[test]
    fn table_lists_expectations() {
        use crate::model::check::CheckEvent;
        use crate::render::{Format, Render, Style};
        let mut r: CheckReport = load("check.json");
        apply_expectations(
            &mut r,
            &assertions(
                Scope::Check,
                &["relay:tls", "tls:cert-valid-days>=14", "rtt<1s"],
            ),
        );
        let mut out = Vec::new();
        CheckEvent::Summary(Box::new(r))
            .render(Format::Table, &mut out, &Style::default())
            .unwrap();
        let s = String::from_utf8(out).unwrap();
        let tail: Vec<&str> = s
            .lines()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        golden("check-expect.table-tail.txt", &(tail.join("\n") + "\n"));
    }

    #[test]
    fn quiet_is_one_line_plus_failures() {
        let mut r: CheckReport = load("check.json");
        let mut out = Vec::new();
        render_quiet(&r, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s.lines().count(), 1, "{s}");
        assert!(
            s.starts_with("iceprobe check: FAIL FAILED: 1 of 4 rows"),
            "{s}"
        );
        apply_expectations(&mut r, &assertions(Scope::Check, &["relay>=1", "rtt<10ms"]));
        let mut out = Vec::new();
        render_quiet(&r, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 2, "{s}");
        assert!(
            lines[0].ends_with("; expectations FAILED: 1 of 2 (rtt<10ms) (0.2 s, exit 1)"),
            "{s}"
        );
        assert!(
            lines[1].starts_with("  FAIL rtt<10ms: observed worst 36.0 ms (allocate"),
            "{s}"
        );
    }

    #[test]
    fn summary_line_is_one_line() {
        let v = Verdict {
            ok: false,
            exit_code: 1,
            summary: "FAILED: 1 of 2 rows".into(),
        };
        assert_eq!(
            summary_line("check", &v, 1234.0),
            "iceprobe check: FAIL FAILED: 1 of 2 rows (1.2 s, exit 1)"
        );
    }
}
