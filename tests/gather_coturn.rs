//! `iceprobe gather` against a real coturn in network namespaces: UDP, TCP and TLS relays,
//! credentials (long-term and REST), silence, certificates, relay-only and large responses.
#![allow(clippy::disallowed_methods)] // tests and their harness read the clock

mod common;

use std::process::Output;
use std::time::Instant;

use common::{assert_no_secret, Coturn, LeafKind, TestPki, Testbed, CLIENT_PUBLIC_IP, SERVER_IP};
use iceprobe::candidate::CandidateType;
use iceprobe::ice_url::Protocol;
use iceprobe::model::gather::{GatherEvent as Event, GatherReport};
use iceprobe::model::Outcome;
use iceprobe::model::Phase;

const USER: &str = "alice";
const PASS: &str = "correct-horse-battery";

fn report(out: &Output) -> GatherReport {
    common::json_report(out, "")
}

/// A credential file inside a temp dir, so the secret never sits in argv.
fn secret_file(dir: &std::path::Path, secret: &str) -> String {
    let p = dir.join("credential");
    std::fs::write(&p, format!("{secret}\n")).unwrap();
    p.to_string_lossy().into_owned()
}

fn tls_coturn(tb: &Testbed, pki: &TestPki, kind: LeafKind) -> Coturn {
    let leaf = pki.leaf("turn", &[&SERVER_IP.to_string(), "turn.test"], kind);
    Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .tls(&leaf.cert, &leaf.key)
        .start()
}

#[test]
fn udp_tcp_tls_relays_with_correct_protocols() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let pki = TestPki::new();
    let coturn = tls_coturn(&tb, &pki, LeafKind::Valid);
    let cred = secret_file(pki.dir(), PASS);
    let ca = pki.ca_pem().to_string_lossy().into_owned();
    let s = SERVER_IP.to_string();
    let urls = [
        format!("stun:{s}"),
        format!("turn:{s}?transport=udp"),
        format!("turn:{s}?transport=tcp"),
        format!("turns:{s}"),
    ];
    let mut args: Vec<&str> = vec![
        "gather",
        "--format",
        "json",
        "-u",
        USER,
        "--credential-file",
        &cred,
        "--ca",
        &ca,
    ];
    args.extend(urls.iter().map(String::as_str));
    let out = common::iceprobe_in(&tb.cli, &args);
    assert_no_secret(&out, PASS);
    let r = report(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:#?}\n{}",
        r.errors,
        coturn.log()
    );
    assert!(r.verdict.ok);

    let host: Vec<_> = r
        .candidates
        .iter()
        .filter(|c| c.kind == CandidateType::Host)
        .collect();
    assert!(
        host.iter()
            .any(|c| c.address == std::net::IpAddr::V4(CLIENT_PUBLIC_IP)),
        "{host:?}"
    );
    let srflx: Vec<_> = r
        .candidates
        .iter()
        .filter(|c| c.kind == CandidateType::Srflx)
        .collect();
    assert_eq!(
        srflx.len(),
        2,
        "stun: and UDP turn: each give srflx: {srflx:?}"
    );
    for c in &srflx {
        // No NAT: the server sees our own address; raddr is the base.
        assert_eq!(c.address, std::net::IpAddr::V4(CLIENT_PUBLIC_IP));
        assert_eq!(
            c.related_address,
            Some(std::net::IpAddr::V4(CLIENT_PUBLIC_IP))
        );
    }
    let mut relays: Vec<_> = r
        .candidates
        .iter()
        .filter(|c| c.kind == CandidateType::Relay)
        .collect();
    relays.sort_by_key(|c| c.relay_protocol);
    let protos: Vec<_> = relays.iter().map(|c| c.relay_protocol).collect();
    assert_eq!(
        protos,
        vec![
            Some(Protocol::Udp),
            Some(Protocol::Tcp),
            Some(Protocol::Tls)
        ]
    );
    for (c, url) in relays.iter().zip(&urls[1..]) {
        assert_eq!(
            c.address,
            std::net::IpAddr::V4(SERVER_IP),
            "relay on the server's relay IP"
        );
        assert_eq!(
            c.url.as_deref(),
            Some(url.as_str()),
            "attributed to its URL"
        );
        assert!((49160..=49200).contains(&c.port), "{c:?}");
        assert!(c.elapsed_ms > 0.0 && c.elapsed_ms < r.duration_ms);
    }
    assert!(relays[0].priority > relays[1].priority && relays[1].priority > relays[2].priority);
    for s in r.servers.iter().filter(|s| s.url.is_turn()) {
        assert!(matches!(s.relay, Outcome::Ok(_)), "{s:?}");
        assert_eq!(s.released, Some(true), "allocation released: {s:?}");
    }
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
}

#[test]
fn wrong_password_gives_401_event_and_exit_1() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let _coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .start();
    let url = format!("turn:{SERVER_IP}");
    let out = common::iceprobe_in_env(
        &tb.cli,
        &["gather", "--format", "ndjson", "-u", USER, &url],
        &[("ICEPROBE_CREDENTIAL", "wrong-password")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_no_secret(&out, "wrong-password");
    let events: Vec<Event> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let errors: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Error(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].failure.phase, Phase::TurnAuth);
    assert_eq!(errors[0].failure.code, Some(401));
    assert!(
        errors[0].failure.cause.contains("wrong TURN credentials"),
        "{}",
        errors[0].failure.cause
    );
    assert!(matches!(events.last(), Some(Event::Summary(_))));
}

#[test]
fn rest_secret_credentials_work_and_wrong_secret_is_explained() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let _coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .auth_secret("rest-shared-secret")
        .start();
    let url = format!("turn:{SERVER_IP}?transport=tcp");
    let ok = common::iceprobe_in_env(
        &tb.cli,
        &[
            "gather",
            "--format",
            "json",
            "--relay-only",
            "-u",
            "bob",
            &url,
        ],
        &[("ICEPROBE_TURN_SECRET", "rest-shared-secret")],
    );
    assert_no_secret(&ok, "rest-shared-secret");
    let r = report(&ok);
    assert_eq!(ok.status.code(), Some(0), "{:#?}", r.errors);
    assert_eq!(r.candidates.len(), 1);
    assert_eq!(r.candidates[0].relay_protocol, Some(Protocol::Tcp));

    let bad = common::iceprobe_in_env(
        &tb.cli,
        &["gather", "--format", "json", "--relay-only", &url],
        &[("ICEPROBE_TURN_SECRET", "not-the-secret")],
    );
    let r = report(&bad);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(r.errors[0].failure.code, Some(401));
    assert!(
        r.errors[0].failure.cause.contains("REST credential"),
        "{}",
        r.errors[0].failure.cause
    );
}

#[test]
fn silent_port_times_out_within_the_deadline() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    // Nothing listens on 3999: UDP goes unanswered (ICMP is not a reply to STUN).
    let url = format!("turn:{SERVER_IP}:3999?transport=udp");
    let started = Instant::now();
    let out = common::iceprobe_in_env(
        &tb.cli,
        &[
            "gather",
            "--format",
            "json",
            "--timeout",
            "2s",
            "-u",
            USER,
            &url,
        ],
        &[("ICEPROBE_CREDENTIAL", PASS)],
    );
    let wall = started.elapsed();
    let r = report(&out);
    assert_eq!(out.status.code(), Some(1));
    // The run's own clock: the deadline plus at most 10 %.
    assert!(r.duration_ms <= 2200.0, "took {} ms", r.duration_ms);
    assert!(wall.as_secs_f64() < 10.0, "process took {wall:?}");
    assert!(!r.errors.is_empty());
    for e in &r.errors {
        assert_eq!(e.failure.phase, Phase::Timeout, "{e:?}");
        assert!(
            e.failure.cause.contains("silent on UDP 3999"),
            "{}",
            e.failure.cause
        );
    }
}

#[test]
fn bad_certificates_give_structured_tls_errors() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let pki = TestPki::new();
    let ca = pki.ca_pem().to_string_lossy().into_owned();
    let url = format!("turns:{SERVER_IP}");
    let cases = [
        (LeafKind::Expired, "expired"),
        (LeafKind::WrongName, "not 198.18.0.1"),
        (LeafKind::UnknownCa, "unknown"),
    ];
    for (kind, want) in cases {
        let coturn = tls_coturn(&tb, &pki, kind);
        let out = common::iceprobe_in_env(
            &tb.cli,
            &["gather", "--format", "json", "--ca", &ca, "-u", USER, &url],
            &[("ICEPROBE_CREDENTIAL", PASS)],
        );
        let r = report(&out);
        assert_eq!(out.status.code(), Some(1), "{kind:?}");
        let e = &r.errors[0];
        assert_eq!(e.failure.phase, Phase::Tls, "{kind:?}: {e:?}");
        assert!(
            e.failure.cause.contains(want),
            "{kind:?}: {}",
            e.failure.cause
        );
        coturn.stop();
    }
    // --insecure accepts the expired certificate and says so.
    let coturn = tls_coturn(&tb, &pki, LeafKind::Expired);
    let out = common::iceprobe_in_env(
        &tb.cli,
        &["gather", "--format", "json", "--insecure", "-u", USER, &url],
        &[("ICEPROBE_CREDENTIAL", PASS)],
    );
    let r = report(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:#?}\n{}",
        r.errors,
        coturn.log()
    );
    assert!(r.run.insecure_tls);
}

#[test]
fn relay_only_yields_relays_only() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let _coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .start();
    let stun = format!("stun:{SERVER_IP}");
    let turn = format!("turn:{SERVER_IP}");
    let out = common::iceprobe_in_env(
        &tb.cli,
        &[
            "gather",
            "--format",
            "json",
            "--relay-only",
            "-u",
            USER,
            &stun,
            &turn,
        ],
        &[("ICEPROBE_CREDENTIAL", PASS)],
    );
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{:#?}", r.errors);
    assert!(!r.candidates.is_empty());
    assert!(
        r.candidates.iter().all(|c| c.kind == CandidateType::Relay),
        "{:?}",
        r.candidates
    );
    assert!(r
        .servers
        .iter()
        .all(|s| matches!(s.srflx, Outcome::NotChecked { .. })));
}

#[test]
fn response_over_120_bytes_still_yields_srflx() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    for ns in [&tb.srv, &tb.cli] {
        ns.enable_ipv6();
    }
    tb.srv.sysctl("net.ipv6.conf.br0.disable_ipv6", "0");
    tb.cli.sysctl("net.ipv6.conf.eth0.disable_ipv6", "0");
    tb.srv
        .ip(["-6", "addr", "add", "fd00::1/64", "dev", "br0", "nodad"]);
    tb.srv
        .ip(["-6", "addr", "add", "fd00::2/64", "dev", "br0", "nodad"]);
    tb.cli
        .ip(["-6", "addr", "add", "fd00::10/64", "dev", "eth0", "nodad"]);
    // Two IPv6 listeners switch RFC 5780 on: OTHER-ADDRESS and RESPONSE-ORIGIN make the
    // Binding response longer than webrtc-rs's 120-byte read buffer.
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .listen("fd00::1".parse::<std::net::IpAddr>().unwrap())
        .listen("fd00::2".parse::<std::net::IpAddr>().unwrap())
        .start();
    let out = common::iceprobe_in(
        &tb.cli,
        &["gather", "--format", "json", "-6", "stun:[fd00::1]"],
    );
    let r = report(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:#?}\n{}",
        r.errors,
        coturn.log()
    );
    let srflx: Vec<_> = r
        .candidates
        .iter()
        .filter(|c| c.kind == CandidateType::Srflx)
        .collect();
    assert_eq!(srflx.len(), 1);
    assert_eq!(
        srflx[0].address,
        "fd00::10".parse::<std::net::IpAddr>().unwrap()
    );
}
