//! `iceprobe check` against a real coturn in network namespaces: a healthy UDP+TCP+TLS+DTLS server,
//! credentials (long-term, REST, expired REST), certificates, blocked UDP, private relay
//! addresses, quota (release), denied peers and nothing listening.
//!
//! Every run uses `--format json`, parsed strictly into [`CheckReport`]
//! (`deny_unknown_fields`). Secrets go through the environment or a file, never argv, and are
//! asserted absent from stdout and stderr.
#![allow(clippy::disallowed_methods)] // tests and their harness read the clock

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{assert_no_secret, Coturn, LeafKind, TestPki, Testbed, SERVER_IP};
use iceprobe::ice_url::Protocol;
use iceprobe::model::check::{CheckReport, CheckRow, RowVerdict, Stage};
use iceprobe::model::{Family, Outcome, Phase};
use iceprobe::secret::Secret;

const USER: &str = "alice";
const PASS: &str = "correct-horse-battery";
const REST_SECRET: &str = "north-wind-shared-secret";
/// coturn's default relay port range in the harness (`CoturnBuilder::relay_ports`).
const RELAY_PORTS: std::ops::RangeInclusive<u16> = 49160..=49200;

fn report(out: &Output) -> CheckReport {
    common::json_report(out, "")
}

/// Runs `iceprobe check --format json ARGS` in the client namespace with `env`, asserts that no
/// value of `env` leaks and that the exit code is `code`, and returns the parsed report.
fn check(
    tb: &Testbed,
    coturn: &Coturn,
    args: &[&str],
    env: &[(&str, &str)],
    code: i32,
) -> CheckReport {
    let mut argv = vec!["check", "--format", "json"];
    argv.extend_from_slice(args);
    let out = common::iceprobe_in_env(&tb.cli, &argv, env);
    for (_, v) in env {
        assert_no_secret(&out, v);
    }
    let r = report(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{argv:?}\n{r:#?}\nstderr: {}\n--- coturn ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        coturn.log()
    );
    r
}

/// The failed stage's (phase, code, reason, cause); panics if the stage did not fail.
fn failure<T: std::fmt::Debug>(stage: &Stage<T>) -> (Phase, Option<u16>, String, String) {
    match stage {
        Outcome::Failed(f) => (
            f.failure.phase,
            f.failure.code,
            f.failure.reason.clone().unwrap_or_default(),
            f.failure.cause.clone(),
        ),
        other => panic!("expected a failed stage, got {other:?}"),
    }
}

fn row(r: &CheckReport, transport: Protocol) -> &CheckRow {
    r.rows
        .iter()
        .find(|row| row.transport == transport)
        .unwrap_or_else(|| panic!("no {transport} row in {r:#?}"))
}

fn ms_sane(what: &str, ms: Option<f64>, timeout_ms: u64) {
    let ms = ms.unwrap_or_else(|| panic!("{what}: no time"));
    assert!(
        ms > 0.0 && ms < timeout_ms as f64,
        "{what}: {ms} ms is not in (0, {timeout_ms})"
    );
}

/// Asserts every applicable stage of a TURN row passed, with sane timings and real data
/// through the relay; `relay_ip` is the address coturn relays from.
fn assert_healthy(row: &CheckRow, relay_ip: Ipv4Addr, timeout_ms: u64) {
    let what = format!("{} {}", row.url, row.transport);
    let connected = row.transport.is_stream();
    let tls = row.transport.is_secure();
    assert!(row.turn, "{what}");
    assert_eq!(row.connect.is_ok(), connected, "{what}: {:?}", row.connect);
    assert_eq!(row.tls.is_ok(), tls, "{what}: {:?}", row.tls);
    if !connected {
        assert!(matches!(row.connect, Outcome::NotChecked { .. }));
    }
    if !tls {
        assert!(matches!(row.tls, Outcome::NotChecked { .. }));
    }
    for (name, stage) in [
        ("connect", row.connect.ms()),
        ("tls", row.tls.ms()),
        ("binding", row.binding.ms()),
        ("challenge", row.challenge.ms()),
        ("allocate", row.allocate.ms()),
        ("permission", row.permission.ms()),
        ("channel", row.channel.ms()),
        ("send_echo", row.send_echo.ms()),
        ("channel_echo", row.channel_echo.ms()),
        ("release", row.release.ms()),
    ] {
        if (name == "connect" && !connected) || (name == "tls" && !tls) {
            continue;
        }
        ms_sane(&format!("{what} {name}"), stage, timeout_ms);
    }
    assert!(
        row.permission.is_ok() && row.channel.is_ok(),
        "{what}: {row:#?}"
    );
    let binding = row.binding.info().expect("binding ok");
    assert!(
        binding.software.as_deref().unwrap_or("").contains("Coturn"),
        "{what}: SOFTWARE {:?}",
        binding.software
    );
    assert!(
        binding.fingerprint,
        "{what}: coturn runs with --fingerprint"
    );
    assert_eq!(
        row.challenge.info().expect("challenge ok").realm,
        "iceprobe.test"
    );
    let alloc = row.allocate.info().expect("allocate ok");
    let relayed: SocketAddr = alloc.relayed;
    assert_eq!(relayed.ip(), relay_ip, "{what}");
    assert!(RELAY_PORTS.contains(&relayed.port()), "{what}: {relayed}");
    assert_eq!(alloc.integrity, Some(true), "{what}");
    assert!(alloc.lifetime_s > 0, "{what}");
    // Data really went A → relay → peer allocation B → back: the peer is B's relayed address.
    for echo in [&row.send_echo, &row.channel_echo] {
        let info = echo
            .info()
            .unwrap_or_else(|| panic!("{what}: echo {echo:?}"));
        let peer: SocketAddr = info.peer;
        assert_eq!(peer.ip(), relay_ip, "{what}");
        assert!(RELAY_PORTS.contains(&peer.port()), "{what}: {peer}");
        assert_ne!(peer, relayed, "{what}: the peer is a second allocation");
        assert!(info.bytes > 0);
    }
    assert!(row.release.is_ok(), "{what}: {:?}", row.release);
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn ca_arg(pki: &TestPki) -> String {
    pki.ca_pem().to_string_lossy().into_owned()
}

fn lt_coturn(tb: &Testbed) -> Coturn {
    Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .start()
}

#[test]
fn healthy_udp_tcp_tls_dtls_server_passes_every_stage() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let pki = TestPki::new();
    let leaf = pki.leaf("turn", &[&SERVER_IP.to_string()], LeafKind::Valid);
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .tls(&leaf.cert, &leaf.key)
        .start();
    let cred_file = pki.dir().join("credential");
    std::fs::write(&cred_file, format!("{PASS}\n")).unwrap();
    let cred_file = cred_file.to_string_lossy().into_owned();
    let ca = ca_arg(&pki);
    let args = [
        "-u",
        USER,
        "--credential-file",
        &cred_file,
        "--ca",
        &ca,
        "turn:198.18.0.1?transport=udp",
        "turn:198.18.0.1?transport=tcp",
        "turns:198.18.0.1",
        // RFC 7350: TURN over DTLS, on the TLS port (coturn serves DTLS beside TLS by default).
        "turns:198.18.0.1?transport=udp",
    ];
    let out = common::iceprobe_in(&tb.cli, &{
        let mut a = vec!["check", "--format", "json"];
        a.extend_from_slice(&args);
        a
    });
    assert_no_secret(&out, PASS);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#?}\n{}", coturn.log());
    assert_eq!(
        r.schema_version,
        iceprobe::model::check::CHECK_SCHEMA_VERSION
    );
    assert_eq!(r.command, "check");
    assert_eq!(r.timeout_ms, 10_000);
    assert!(!r.insecure_tls);
    assert!(r.duration_ms > 0.0 && r.duration_ms < r.timeout_ms as f64);
    assert!(r.verdict.ok);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.fix.is_empty(), "{:?}", r.fix);
    assert_eq!(r.rows.len(), 4);
    let transports: Vec<_> = r.rows.iter().map(|row| row.transport).collect();
    assert_eq!(
        transports,
        [Protocol::Udp, Protocol::Tcp, Protocol::Tls, Protocol::Dtls]
    );
    for row in &r.rows {
        assert_eq!(row.verdict, RowVerdict::Pass, "{row:#?}");
        assert!(row.warnings.is_empty(), "{:?}", row.warnings);
        assert_eq!(row.family, Some(Family::Ipv4));
        assert!(matches!(row.dns, Outcome::NotChecked { .. }), "IP literal");
        assert_healthy(row, SERVER_IP, r.timeout_ms);
    }
    assert_eq!(
        row(&r, Protocol::Udp).address,
        Some("198.18.0.1:3478".parse().unwrap())
    );
    assert_eq!(
        row(&r, Protocol::Tls).address,
        Some("198.18.0.1:5349".parse().unwrap())
    );
    let tls = row(&r, Protocol::Tls).tls.info().expect("tls info");
    assert!(tls.version.starts_with("TLSv1."), "{}", tls.version);
    assert!(!tls.cipher.is_empty());
    assert_eq!(tls.sni, None, "IP addresses are never sent as SNI");
    let leaf_info = tls.chain.first().expect("a chain");
    assert!(
        leaf_info.sans.iter().any(|s| s == "198.18.0.1"),
        "{:?}",
        leaf_info.sans
    );
    assert!(leaf_info.days_left > 14, "{leaf_info:?}");
    assert!(
        leaf_info.issuer.contains("iceprobe test CA"),
        "{leaf_info:?}"
    );
    let dtls_row = row(&r, Protocol::Dtls);
    assert_eq!(dtls_row.address, Some("198.18.0.1:5349".parse().unwrap()));
    let dtls = dtls_row.tls.info().expect("dtls info");
    assert_eq!(dtls.version, "DTLSv1.2");
    assert!(dtls.cipher.starts_with("TLS_ECDHE_"), "{}", dtls.cipher);
    assert_eq!(
        dtls.verification,
        iceprobe::net::tls::Verification::Verified
    );
    assert_eq!(
        dtls.chain.first().map(|c| &c.subject),
        Some(&leaf_info.subject)
    );

    // The same run as a table (the default format) also never shows the secret.
    let out = common::iceprobe_in(&tb.cli, &{
        let mut a = vec!["check"];
        a.extend_from_slice(&args);
        a
    });
    assert_eq!(out.status.code(), Some(0));
    assert_no_secret(&out, PASS);
}

#[test]
fn wrong_password_fails_allocate_with_401_cause() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let coturn = lt_coturn(&tb);
    let r = check(
        &tb,
        &coturn,
        &["-u", USER, "turn:198.18.0.1?transport=udp"],
        &[("ICEPROBE_CREDENTIAL", "not-the-password")],
        1,
    );
    assert!(!r.verdict.ok);
    let row = &r.rows[0];
    assert_eq!(row.verdict, RowVerdict::Fail);
    assert!(row.binding.is_ok(), "STUN still works: {:?}", row.binding);
    assert!(row.challenge.is_ok(), "{:?}", row.challenge);
    let (phase, code, _, cause) = failure(&row.allocate);
    assert_eq!((phase, code), (Phase::TurnAuth, Some(401)));
    assert!(cause.contains("wrong TURN credentials"), "{cause}");
    for stage in [&row.permission, &row.channel, &row.release] {
        assert!(matches!(stage, Outcome::NotChecked { .. }), "{stage:?}");
    }
    assert!(
        r.fix.iter().any(|f| f.contains("wrong TURN credentials")),
        "{:?}",
        r.fix
    );
}

#[test]
fn rest_secret_passes_and_expired_rest_credential_is_explained() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .auth_secret(REST_SECRET)
        .start();
    let url = "turn:198.18.0.1?transport=udp";
    let r = check(
        &tb,
        &coturn,
        &["-u", "bob", url],
        &[("ICEPROBE_TURN_SECRET", REST_SECRET)],
        0,
    );
    assert_healthy(&r.rows[0], SERVER_IP, r.timeout_ms);

    // A wrong shared secret: the REST-specific cause.
    let r = check(
        &tb,
        &coturn,
        &["-u", "bob", url],
        &[("ICEPROBE_TURN_SECRET", "some-other-secret")],
        1,
    );
    let (phase, code, _, cause) = failure(&r.rows[0].allocate);
    assert_eq!((phase, code), (Phase::TurnAuth, Some(401)));
    assert!(cause.contains("REST credential rejected"), "{cause}");

    // An expired REST credential, minted by hand (iceprobe only mints future expiries) and given
    // as ordinary long-term credentials, the way an application backend would hand it out.
    let expiry = unix_now() - 3600;
    let (username, credential) =
        iceprobe::servers::rest_credentials(&Secret::new(REST_SECRET), Some("bob"), expiry);
    let r = check(
        &tb,
        &coturn,
        &["-u", &username, url],
        &[("ICEPROBE_CREDENTIAL", credential.expose())],
        1,
    );
    let row = &r.rows[0];
    assert!(row.challenge.is_ok(), "{:?}", row.challenge);
    let (phase, code, _, cause) = failure(&row.allocate);
    assert_eq!((phase, code), (Phase::TurnAuth, Some(401)));
    assert!(cause.contains("REST credential expired"), "{cause}");
}

fn tls_failure(kind: LeafKind, want: &str) {
    let tb = Testbed::public();
    let pki = TestPki::new();
    let leaf = pki.leaf("turn", &[&SERVER_IP.to_string()], kind);
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .tls(&leaf.cert, &leaf.key)
        .start();
    let ca = ca_arg(&pki);
    // TLS and DTLS share the verifier: the same certificate gives the same reason on both.
    let r = check(
        &tb,
        &coturn,
        &[
            "-u",
            USER,
            "--ca",
            &ca,
            "turns:198.18.0.1",
            "turns:198.18.0.1?transport=udp",
        ],
        &[("ICEPROBE_CREDENTIAL", PASS)],
        1,
    );
    let transports: Vec<_> = r.rows.iter().map(|row| row.transport).collect();
    assert_eq!(transports, [Protocol::Tls, Protocol::Dtls]);
    for row in &r.rows {
        let what = format!("{kind:?} over {}", row.transport);
        if row.transport == Protocol::Tls {
            assert!(row.connect.is_ok(), "{what}: {:?}", row.connect);
        } else {
            assert!(matches!(row.connect, Outcome::NotChecked { .. }), "{what}");
        }
        let (phase, _, reason, cause) = failure(&row.tls);
        assert_eq!(phase, Phase::Tls, "{what}");
        assert!(
            cause.contains(want),
            "{what}: cause {cause:?} (reason {reason:?}) lacks {want:?}"
        );
        for stage in [&row.allocate.ms(), &row.release.ms()] {
            assert_eq!(*stage, None, "{what}: nothing after a failed handshake");
        }
        assert!(row.binding.info().is_none(), "{what}");
    }
}

#[test]
fn expired_certificate_is_reported_as_expired() {
    if common::require_netns() {
        tls_failure(LeafKind::Expired, "expired");
    }
}

#[test]
fn wrong_name_certificate_is_reported_as_name_mismatch() {
    if common::require_netns() {
        tls_failure(LeafKind::WrongName, "not 198.18.0.1");
    }
}

#[test]
fn unknown_ca_certificate_is_reported_as_unknown_issuer() {
    if common::require_netns() {
        tls_failure(LeafKind::UnknownCa, "unknown");
    }
}

#[test]
fn udp_dropped_by_firewall_fails_udp_only_with_warning() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let pki = TestPki::new();
    let leaf = pki.leaf("turn", &[&SERVER_IP.to_string()], LeafKind::Valid);
    // Started before the rule: the harness waits for a UDP Binding answer.
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .tls(&leaf.cert, &leaf.key)
        .start();
    tb.srv.nft(
        "table inet iceprobe_fw {\n  chain input {\n    type filter hook input priority 0;\n    udp dport 3478 drop\n  }\n}\n",
    );
    let ca = ca_arg(&pki);
    let started = std::time::Instant::now();
    let r = check(
        &tb,
        &coturn,
        &[
            "--timeout",
            "3s",
            "-u",
            USER,
            "--ca",
            &ca,
            "turn:198.18.0.1?transport=udp",
            "turn:198.18.0.1?transport=tcp",
            "turns:198.18.0.1",
        ],
        &[("ICEPROBE_CREDENTIAL", PASS)],
        1,
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.timeout_ms, 3000);
    let udp = row(&r, Protocol::Udp);
    assert_eq!(udp.verdict, RowVerdict::Fail);
    let (phase, _, _, cause) = failure(&udp.binding);
    assert_eq!(phase, Phase::Timeout);
    assert!(
        cause.contains("blocked by a firewall or not listening"),
        "{cause}"
    );
    let (phase, _, _, cause) = failure(&udp.challenge);
    assert_eq!(phase, Phase::Timeout);
    assert!(
        cause.contains("blocked by a firewall or not listening"),
        "{cause}"
    );
    for t in [Protocol::Tcp, Protocol::Tls] {
        let row = row(&r, t);
        assert_eq!(row.verdict, RowVerdict::Pass, "{row:#?}");
        assert_healthy(row, SERVER_IP, r.timeout_ms);
    }
    assert!(
        r.warnings.iter().any(|w| w.kind.as_str() == "udp-blocked"),
        "{:?}",
        r.warnings
    );
    assert!(r.duration_ms <= 3000.0 * 1.1, "{}", r.duration_ms);
}

#[test]
fn cgnat_relay_address_warns_private_relay() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let relay = Ipv4Addr::new(100, 64, 7, 1);
    tb.srv.addr_add("br0", &format!("{relay}/24"));
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .relay_ip(relay)
        .user(USER, PASS)
        .start();
    let r = check(
        &tb,
        &coturn,
        &["-u", USER, "turn:198.18.0.1?transport=udp"],
        &[("ICEPROBE_CREDENTIAL", PASS)],
        0,
    );
    let row = &r.rows[0];
    // The echo goes relay → relay inside the server, so data still flows.
    assert_healthy(row, relay, r.timeout_ms);
    assert_eq!(row.verdict, RowVerdict::Warn);
    let w = row
        .warnings
        .iter()
        .find(|w| w.kind.as_str() == "private-relay-address")
        .unwrap_or_else(|| panic!("{:?}", row.warnings));
    assert!(w.message.contains("100.64.7.1"), "{}", w.message);
    assert!(
        r.fix
            .iter()
            .any(|f| f.contains("relay-ip") || f.contains("external-ip")),
        "{:?}",
        r.fix
    );
}

/// Each check row holds two allocations at once under the one username it has: A (the one under
/// test) and B (the echo peer whose relayed address A sends to). coturn counts `--user-quota`
/// per username, so a row needs a quota of 2. With quota 2, a second run passing proves the
/// first released *both* allocations (coturn frees quota on a ~1 s timer, hence the pause).
///
/// Decision: the peer stays under the same username. It is the only credential a check has
/// (a second user would have to be configured on the server just for the tool), and counting
/// against the user's quota is honest: it is what a real client's two allocations would do.
/// With quota 1 the peer allocation gets 486 and the row says why (see the next test).
#[test]
fn quota_two_allows_back_to_back_checks_because_both_allocations_are_released() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let pki = TestPki::new();
    let leaf = pki.leaf("turn", &[&SERVER_IP.to_string()], LeafKind::Valid);
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .tls(&leaf.cert, &leaf.key)
        .user_quota(2)
        .start();
    let ca = ca_arg(&pki);
    let env = [("ICEPROBE_CREDENTIAL", PASS)];
    // Each run needs both allocations of the quota: a run after one that leaked fails with 486.
    // The DTLS run in the middle proves DTLS rows release theirs too.
    for (i, url) in [
        "turn:198.18.0.1?transport=udp",
        "turns:198.18.0.1?transport=udp",
        "turn:198.18.0.1?transport=udp",
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(2));
        }
        let r = check(&tb, &coturn, &["-u", USER, "--ca", &ca, url], &env, 0);
        assert_healthy(&r.rows[0], SERVER_IP, r.timeout_ms);
    }
}

#[test]
fn quota_one_fails_the_peer_allocation_with_a_quota_cause() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .user_quota(1)
        .start();
    let args = ["-u", USER, "turn:198.18.0.1?transport=udp"];
    let env = [("ICEPROBE_CREDENTIAL", PASS)];
    for run in 0..2 {
        let r = check(&tb, &coturn, &args, &env, 1);
        let row = &r.rows[0];
        assert!(row.allocate.is_ok(), "run {run}: {:?}", row.allocate);
        let (phase, code, _, cause) = failure(&row.permission);
        assert_eq!((phase, code), (Phase::Relay, Some(486)), "run {run}");
        assert!(cause.contains("quota"), "{cause}");
        assert!(cause.contains("two allocations"), "{cause}");
        // A's allocation was still released: the second run's A allocating under quota 1
        // proves it.
        assert!(row.release.is_ok(), "run {run}: {:?}", row.release);
        std::thread::sleep(Duration::from_secs(2));
    }
}

#[test]
fn denied_peer_fails_permission_with_403_cause() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    // Allowed ranges override denied ones, so allow only what excludes 198.18.0.1.
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .allowed_peer_ip("198.18.0.2-198.19.255.255")
        .denied_peer_ip("198.18.0.1")
        .start();
    let r = check(
        &tb,
        &coturn,
        &["-u", USER, "turn:198.18.0.1?transport=udp"],
        &[("ICEPROBE_CREDENTIAL", PASS)],
        1,
    );
    let row = &r.rows[0];
    assert!(row.allocate.is_ok(), "{:?}", row.allocate);
    let (phase, code, _, cause) = failure(&row.permission);
    assert_eq!((phase, code), (Phase::Permission, Some(403)));
    assert!(cause.contains("denied-peer-ip"), "{cause}");
    assert!(row.release.is_ok(), "{:?}", row.release);
}

#[test]
fn nothing_listening_is_refused_or_times_out_within_the_deadline() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    let coturn = lt_coturn(&tb);
    let r = check(
        &tb,
        &coturn,
        &[
            "--timeout",
            "2s",
            "-u",
            USER,
            "turn:198.18.0.1:3999?transport=tcp",
            "turn:198.18.0.1:3999?transport=udp",
            "turns:198.18.0.1:3999?transport=udp",
        ],
        &[("ICEPROBE_CREDENTIAL", PASS)],
        1,
    );
    assert!(r.duration_ms <= 2000.0 * 1.1, "{}", r.duration_ms);
    let tcp = row(&r, Protocol::Tcp);
    let (phase, _, _, cause) = failure(&tcp.connect);
    assert_eq!(phase, Phase::Connect);
    assert!(cause.contains("connection refused"), "{cause}");
    let udp = row(&r, Protocol::Udp);
    let (phase, _, _, cause) = failure(&udp.binding);
    assert_eq!(phase, Phase::Timeout);
    assert!(cause.contains("not listening"), "{cause}");
    let dtls = row(&r, Protocol::Dtls);
    let (phase, _, _, cause) = failure(&dtls.tls);
    assert_eq!(phase, Phase::Timeout);
    assert!(
        cause.starts_with(
            "no DTLS handshake answer within the deadline: UDP to this port is blocked"
        ),
        "{cause}"
    );
    for row in &r.rows {
        assert_eq!(row.verdict, RowVerdict::Fail);
        if let Some(ms) = row.binding.ms() {
            assert!(ms <= 2200.0, "{ms}");
        }
    }
}

#[test]
fn try_alternate_is_followed_once_and_both_rows_reported() {
    if !common::require_netns() {
        return;
    }
    let tb = Testbed::public();
    // coturn answers Allocate with 300 Try Alternate when --alternate-server is set.
    let redirecting = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .user(USER, PASS)
        .arg(&format!("--alternate-server={}:3479", common::SERVER_IP2))
        .start();
    let _alternate = Coturn::builder(&tb.srv)
        .listen(common::SERVER_IP2)
        .port(3479)
        .no_rfc5780()
        .user(USER, PASS)
        .start();
    let url = format!("turn:{SERVER_IP}?transport=udp");
    let r = check(
        &tb,
        &redirecting,
        &["-u", USER, &url],
        &[("ICEPROBE_CREDENTIAL", PASS)],
        0,
    );
    assert_eq!(r.rows.len(), 2, "{:#?}", r.rows);
    let first = &r.rows[0];
    assert_eq!(
        first.alternate_server,
        Some("198.18.0.2:3479".parse().unwrap()),
        "{first:#?}"
    );
    assert!(
        first
            .warnings
            .iter()
            .any(|w| w.kind.as_str() == "redirected"),
        "{first:#?}"
    );
    let second = &r.rows[1];
    assert_eq!(
        second.url.to_string(),
        url,
        "the alternate row belongs to the URL given"
    );
    assert_eq!(second.address, Some("198.18.0.2:3479".parse().unwrap()));
    assert!(
        second.send_echo.is_ok() && second.release.is_ok(),
        "{second:#?}"
    );
    assert_eq!(
        second.alternate_server, None,
        "a redirect is followed only once"
    );
}

#[test]
fn ipv6_check_asks_for_an_ipv6_relay() {
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
    tb.cli
        .ip(["-6", "addr", "add", "fd00::10/64", "dev", "eth0", "nodad"]);
    let v6: std::net::IpAddr = "fd00::1".parse().unwrap();
    // The harness waits for the first listener, so IPv4 comes first; relays on both families.
    let coturn = Coturn::builder(&tb.srv)
        .listen(SERVER_IP)
        .listen(v6)
        .relay_ip(SERVER_IP)
        .arg("--relay-ip=fd00::1")
        .no_rfc5780()
        .user(USER, PASS)
        .arg("--allowed-peer-ip=fd00::-fd00::ffff")
        .start();
    // -6: IPv6 to the server and REQUESTED-ADDRESS-FAMILY IPv6 for the relay (RFC 8656 §18.8).
    let r = check(
        &tb,
        &coturn,
        &["-6", "-u", USER, "turn:[fd00::1]?transport=udp"],
        &[("ICEPROBE_CREDENTIAL", PASS)],
        0,
    );
    assert_eq!(r.rows.len(), 1);
    let row = &r.rows[0];
    assert_eq!(row.family, Some(Family::Ipv6));
    let relayed = &row.allocate.info().expect("allocated").relayed;
    assert!(
        relayed.to_string().starts_with("[fd00::1]:"),
        "IPv6 relay: {relayed}"
    );
    assert!(row.send_echo.is_ok(), "{row:#?}");
}
