//! CI use against a real coturn in network namespaces: `--expect`, `--junit` and `--quiet` as a
//! deploy gate would run them. The JUnit file is parsed back with a real XML parser.
#![allow(clippy::disallowed_methods)] // tests and their harness read the clock

mod common;

use common::{Coturn, LeafKind, TestPki, Testbed, SERVER_IP};
use iceprobe::model::check::CheckReport;
use quick_xml::events::Event;
use quick_xml::Reader;

const USER: &str = "alice";
const PASS: &str = "correct-horse-battery";

/// One JUnit testcase: (classname, name, outcome `passed`/`failure`/`skipped`, message).
type JunitCase = (String, String, String, String);

/// Every testcase of a JUnit document, and the root's (tests, failures) attributes.
fn junit_cases(xml: &str) -> (Vec<JunitCase>, (usize, usize)) {
    let mut r = Reader::from_str(xml);
    let mut cases: Vec<JunitCase> = Vec::new();
    let mut root = (0, 0);
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
        match r.read_event().expect("well-formed JUnit XML") {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                "testsuites" => {
                    root = (
                        attr(&e, "tests").parse().unwrap(),
                        attr(&e, "failures").parse().unwrap(),
                    )
                }
                "testcase" => cases.push((
                    attr(&e, "classname"),
                    attr(&e, "name"),
                    "passed".into(),
                    String::new(),
                )),
                "failure" | "skipped" => {
                    let last = cases.last_mut().expect("inside a testcase");
                    last.2 = e.name().as_ref().to_string();
                    last.3 = attr(&e, "message");
                }
                _ => {}
            },
            _ => {}
        }
    }
    (cases, root)
}

/// A healthy coturn (UDP, TCP, TLS with a certificate from a test CA), and the check arguments
/// for its UDP and TLS URLs.
struct Setup {
    _tb: Testbed,
    pki: TestPki,
    coturn: Coturn,
}

fn setup() -> Setup {
    let tb = Testbed::public();
    let pki = TestPki::new();
    let leaf = pki.leaf("turn", &[&SERVER_IP.to_string()], LeafKind::Valid);
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .tls(&leaf.cert, &leaf.key)
        .start();
    Setup {
        _tb: tb,
        pki,
        coturn,
    }
}

fn check(s: &Setup, extra: &[&str]) -> (std::process::Output, String) {
    let ca = s.pki.ca_pem().to_string_lossy().into_owned();
    let junit = s.pki.dir().join("junit.xml");
    let junit_arg = junit.to_string_lossy().into_owned();
    let mut args = vec![
        "check",
        "-u",
        USER,
        "--ca",
        &ca,
        "--junit",
        &junit_arg,
        "turn:198.18.0.1?transport=udp",
        "turns:198.18.0.1",
    ];
    args.extend_from_slice(extra);
    let out = common::iceprobe_in_env(&s._tb.cli, &args, &[("ICEPROBE_CREDENTIAL", PASS)]);
    let xml = std::fs::read_to_string(&junit).unwrap_or_default();
    (out, xml)
}

#[test]
fn ci_gate_passes_with_relay_tls_and_udp_ok() {
    if !common::require_netns() {
        return;
    }
    let s = setup();
    let (out, xml) = check(
        &s,
        &[
            "--format",
            "json",
            "--expect",
            "relay:tls",
            "--expect",
            "udp:ok",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: CheckReport = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}\n{stdout}\n{}", s.coturn.log()));
    assert_eq!(out.status.code(), Some(0), "{r:#?}\n{}", s.coturn.log());
    assert!(r.verdict.ok, "{:?}", r.verdict);
    assert!(
        r.verdict.summary.ends_with("; expectations: all 2 held"),
        "{}",
        r.verdict.summary
    );
    let exprs: Vec<(&str, bool)> = r
        .expectations
        .iter()
        .map(|e| (e.expression.as_str(), e.passed))
        .collect();
    assert_eq!(exprs, [("relay:tls", true), ("udp:ok", true)]);
    assert_eq!(
        r.expectations[0].observed,
        "1 row(s) allocated a relay over tls"
    );
    assert_eq!(r.expectations[1].observed, "1 udp row passed");

    let (cases, (tests, failures)) = junit_cases(&xml);
    // UDP row: stun, 401, allocate, perm, chan, send-echo, chan-echo, release (an IP literal:
    // no DNS) = 8; TLS row: + connect, tls = 10; + 2 assertions.
    assert_eq!(cases.len(), 20, "{xml}");
    assert_eq!((tests, failures), (20, 0), "{xml}");
    assert!(cases.iter().all(|c| c.2 == "passed"), "{xml}");
    let tls = cases
        .iter()
        .find(|c| c.1 == "tls")
        .expect("a TLS handshake case");
    assert_eq!(tls.0, "check.turns:198.18.0.1 198.18.0.1:5349 tls");
    assert!(cases
        .iter()
        .any(|c| c.0 == "check.expect" && c.1 == "relay:tls"));
}

#[test]
fn ci_gate_fails_with_exit_one_and_junit_failures() {
    if !common::require_netns() {
        return;
    }
    let s = setup();
    let (out, xml) = check(
        &s,
        &[
            "--quiet",
            "--expect",
            "udp:ok",
            "--expect",
            "tls:cert-valid-days>=100000",
            "--expect",
            "relay:tcp",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", s.coturn.log());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("iceprobe check: FAIL ok: ")
            && lines[0]
                .contains("expectations FAILED: 2 of 3 (tls:cert-valid-days>=100000, relay:tcp)"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("  FAIL tls:cert-valid-days>=100000: observed "),
        "{stdout}"
    );
    assert_eq!(
        lines[2],
        "  FAIL relay:tcp: observed not measured: no TURN row over tcp got to Allocate"
    );

    let (cases, (tests, failures)) = junit_cases(&xml);
    assert_eq!((tests, failures), (21, 2), "{xml}");
    let failed: Vec<&JunitCase> = cases.iter().filter(|c| c.2 == "failure").collect();
    assert_eq!(failed[0].1, "tls:cert-valid-days>=100000");
    assert!(
        failed[0]
            .3
            .starts_with("tls:cert-valid-days>=100000 does not hold: observed ")
            && failed[0]
                .3
                .contains("days left (turns:198.18.0.1 198.18.0.1:5349"),
        "{}",
        failed[0].3
    );
    assert_eq!(failed[1].1, "relay:tcp");
    assert!(
        failed[1].3.contains("observed not measured"),
        "{}",
        failed[1].3
    );
    // The stages themselves all passed.
    assert!(cases
        .iter()
        .filter(|c| c.0.starts_with("check.turn"))
        .all(|c| c.2 == "passed"));
}

#[test]
fn ci_gate_fails_when_a_stage_fails() {
    if !common::require_netns() {
        return;
    }
    let s = setup();
    let ca = s.pki.ca_pem().to_string_lossy().into_owned();
    let junit = s.pki.dir().join("wrong.xml");
    let junit_arg = junit.to_string_lossy().into_owned();
    // Wrong password: every stage up to the 401 passes, Allocate fails with 401.
    let out = common::iceprobe_in_env(
        &s._tb.cli,
        &[
            "check",
            "-u",
            USER,
            "--ca",
            &ca,
            "--junit",
            &junit_arg,
            "--expect",
            "srflx",
            "--expect",
            "allocate:ok",
            "turn:198.18.0.1?transport=udp",
        ],
        &[("ICEPROBE_CREDENTIAL", "wrong")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", s.coturn.log());
    assert!(stdout.contains("\nexpectations\n  PASS  srflx"), "{stdout}");
    assert!(stdout.contains("  FAIL  allocate:ok  1 of 1 row: turn:198.18.0.1?transport=udp 198.18.0.1:3478: allocate failed (401: "), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let (cases, (_, failures)) = junit_cases(&xml);
    assert_eq!(failures, 2, "{xml}");
    let alloc = cases.iter().find(|c| c.1 == "allocate").unwrap();
    assert_eq!(alloc.2, "failure");
    assert!(alloc.3.starts_with("401 "), "{}", alloc.3);
    assert!(
        cases.iter().any(|c| c.1 == "perm" && c.2 == "skipped"),
        "{xml}"
    );
}
