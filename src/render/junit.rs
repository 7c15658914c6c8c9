//! JUnit XML (the Ant/Jenkins/Surefire dialect every CI system reads), written by hand: a
//! handful of elements, every attribute and text escaped, characters XML 1.0 forbids replaced.
//! Deterministic: no timestamps or host names, so it can be snapshot-tested.

use std::fmt::Write as _;

/// How one test case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseResult {
    /// Passed; `detail` goes to `<system-out>` when not empty.
    Passed {
        /// What was found (evidence, observed value).
        detail: String,
    },
    /// Failed: `<failure type=… message=…>text</failure>`.
    Failed {
        /// A short machine-readable kind (the phase, `expectation`, `not-measured`).
        kind: String,
        /// One line: the cause.
        message: String,
        /// Longer text, may be empty.
        text: String,
    },
    /// Not run: `<skipped message=…/>`.
    Skipped {
        /// Why.
        message: String,
    },
}

/// One `<testcase>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// `classname`: what was tested (e.g. the server and transport).
    pub classname: String,
    /// `name`: which test (e.g. the stage).
    pub name: String,
    /// Seconds, when known.
    pub time_s: Option<f64>,
    /// The outcome.
    pub result: CaseResult,
}

/// One `<testsuite>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// `name`.
    pub name: String,
    /// Its cases.
    pub cases: Vec<Case>,
}

/// Escape text for an attribute or element content; characters that XML 1.0 cannot carry
/// (control characters other than tab, newline, carriage return) become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn counts(cases: &[Case]) -> (usize, usize, usize) {
    let failures = cases
        .iter()
        .filter(|c| matches!(c.result, CaseResult::Failed { .. }))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.result, CaseResult::Skipped { .. }))
        .count();
    (cases.len(), failures, skipped)
}

/// The whole document. `time_s` is the run's wall time.
pub fn render(name: &str, time_s: f64, suites: &[Suite]) -> String {
    let all: Vec<Case> = suites.iter().flat_map(|s| s.cases.clone()).collect();
    let (tests, failures, skipped) = counts(&all);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time_s:.3}\">",
        escape(name)
    );
    for s in suites {
        let (tests, failures, skipped) = counts(&s.cases);
        let time: f64 = s.cases.iter().filter_map(|c| c.time_s).sum::<f64>() + 0.0;
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">",
            escape(&s.name)
        );
        for c in &s.cases {
            let _ = write!(
                x,
                "    <testcase classname=\"{}\" name=\"{}\"",
                escape(&c.classname),
                escape(&c.name)
            );
            if let Some(t) = c.time_s {
                let _ = write!(x, " time=\"{t:.3}\"");
            }
            match &c.result {
                CaseResult::Passed { detail } if detail.is_empty() => x.push_str("/>\n"),
                CaseResult::Passed { detail } => {
                    let _ = writeln!(
                        x,
                        ">\n      <system-out>{}</system-out>\n    </testcase>",
                        escape(detail)
                    );
                }
                CaseResult::Failed {
                    kind,
                    message,
                    text,
                } => {
                    let _ = writeln!(
                        x,
                        ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>",
                        escape(kind),
                        escape(message),
                        escape(if text.is_empty() { message } else { text })
                    );
                }
                CaseResult::Skipped { message } => {
                    let _ = writeln!(
                        x,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(message)
                    );
                }
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use quick_xml::events::Event;
    use quick_xml::Reader;

    /// What a JUnit document says, read back with a real XML parser: every testcase as
    /// (classname, name, outcome, message) with outcome `passed`, `failure` or `skipped`, and
    /// the root's tests / failures / skipped attributes.
    #[derive(Debug, Default)]
    pub(crate) struct Parsed {
        pub cases: Vec<(String, String, String, String)>,
        pub root: (usize, usize, usize),
    }

    pub(crate) fn parse(xml: &str) -> Parsed {
        let mut r = Reader::from_str(xml);
        let mut p = Parsed::default();
        let attr = |e: &quick_xml::events::BytesStart, k: &str| -> String {
            e.attributes()
                .filter_map(Result::ok)
                .find(|a| a.key.as_ref() == k)
                .map(|a| {
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .unwrap()
                        .into_owned()
                })
                .unwrap_or_default()
        };
        loop {
            match r.read_event().expect("well-formed XML") {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                    "testsuites" => {
                        let n = |k| attr(&e, k).parse().unwrap();
                        p.root = (n("tests"), n("failures"), n("skipped"));
                    }
                    "testcase" => p.cases.push((
                        attr(&e, "classname"),
                        attr(&e, "name"),
                        "passed".into(),
                        String::new(),
                    )),
                    "failure" | "skipped" => {
                        let last = p.cases.last_mut().expect("inside a testcase");
                        last.2 = e.name().as_ref().to_string();
                        last.3 = attr(&e, "message");
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        p
    }

    #[test]
    fn escaping_survives_a_real_parser() {
        let nasty = "a<b>&\"c\" 'd' \u{1} e";
        let xml = render(
            "iceprobe <x>",
            1.5,
            &[Suite {
                name: "s&s".into(),
                cases: vec![
                    Case {
                        classname: nasty.into(),
                        name: "ok".into(),
                        time_s: Some(0.25),
                        result: CaseResult::Passed {
                            detail: nasty.into(),
                        },
                    },
                    Case {
                        classname: "c".into(),
                        name: nasty.into(),
                        time_s: None,
                        result: CaseResult::Failed {
                            kind: "turn-auth".into(),
                            message: nasty.into(),
                            text: String::new(),
                        },
                    },
                    Case {
                        classname: "c".into(),
                        name: "n".into(),
                        time_s: None,
                        result: CaseResult::Skipped {
                            message: "why".into(),
                        },
                    },
                ],
            }],
        );
        let p = parse(&xml);
        assert_eq!(p.root, (3, 1, 1));
        let cleaned = "a<b>&\"c\" 'd' \u{FFFD} e";
        assert_eq!(p.cases[0].0, cleaned);
        assert_eq!(
            p.cases[1],
            ("c".into(), cleaned.into(), "failure".into(), cleaned.into())
        );
        assert_eq!(p.cases[2].2, "skipped");
    }
}
